#!/usr/bin/env python3
"""Generates the labelled PII evaluation set the guard ships.

Writes crates/guard/data/pii_eval.jsonl: one object per line,
{"text", "lang", "entities": [{"type", "start", "end"}]} with offsets in Unicode
code points, end exclusive. English and German sentences with values from
Faker (de_DE, en_US, en_GB); identifiers are checked with python-stdnum where it
has a validator (IBAN, Luhn, Steuer-IdNr, EU VAT), and about a third of the texts
are hard negatives: checksum-broken identifiers, order numbers, prices, plain
dates, version numbers, times.

Run: bash scripts/pii_dataset.sh  (makes a virtualenv with faker and python-stdnum)
"""
import json
import os
import random
import string
import sys

from faker import Faker
from stdnum import iban as std_iban
from stdnum import luhn
from stdnum.de import idnr
from stdnum.eu import vat as eu_vat

SEED = 20261128
R = random.Random(SEED)
Faker.seed(SEED)
FAKE = {"de": Faker("de_DE"), "en": Faker("en_US"), "gb": Faker("en_GB")}


# ---------------------------------------------------------------- identifiers
def tax_id():
    while True:
        d = [R.randint(1, 9)] + [R.randint(0, 9) for _ in range(9)]
        body = "".join(map(str, d))
        # stdnum checks the digit counts and MOD 11,10; the BZSt rule also says a
        # digit that occurs three times may not stand three in a row.
        if any(body[i] == body[i + 1] == body[i + 2] for i in range(8)):
            continue
        for c in "0123456789":
            if idnr.is_valid(body + c):
                return body + c


def vat_id():
    cc = R.choice(["DE", "DE", "DE", "AT", "FR", "IT", "NL", "BE", "PL"])
    while True:
        if cc == "DE":
            cand = "DE" + str(R.randint(1, 9)) + "".join(R.choice(string.digits) for _ in range(8))
        elif cc == "AT":
            cand = "ATU" + "".join(R.choice(string.digits) for _ in range(8))
        elif cc == "FR":
            siren = "".join(R.choice(string.digits) for _ in range(9))
            key = (12 + 3 * (int(siren) % 97)) % 97
            cand = f"FR{key:02d}{siren}"
        elif cc == "IT":
            cand = "IT" + "".join(R.choice(string.digits) for _ in range(11))
        elif cc == "NL":
            cand = "NL" + "".join(R.choice(string.digits) for _ in range(9)) + "B01"
        elif cc == "BE":
            cand = "BE0" + "".join(R.choice(string.digits) for _ in range(9))
        else:
            cand = "PL" + "".join(R.choice(string.digits) for _ in range(10))
        if eu_vat.is_valid(cand):
            return cand


def cross_sum(v):
    return sum(int(c) for c in str(v))


def rvnr():
    """German pension insurance number; check digit per the DRV's published rule."""
    while True:
        area = f"{R.choice([2, 3, 4, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 23, 24, 25, 26, 28, 29, 38, 39, 40, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 89]):02d}"
        day, month, year = R.randint(1, 28), R.randint(1, 12), R.randint(0, 99)
        letter = R.choice(string.ascii_uppercase)
        serial = f"{R.randint(0, 99):02d}"
        digits = area + f"{day:02d}{month:02d}{year:02d}" + f"{ord(letter) - 64:02d}" + serial
        weights = [2, 1, 2, 5, 7, 1, 2, 1, 2, 1, 2, 1]
        check = sum(cross_sum(int(d) * w) for d, w in zip(digits, weights)) % 10
        return f"{area}{day:02d}{month:02d}{year:02d}{letter}{serial}{check}"


def kvnr():
    """Krankenversichertennummer (fixed part): letter, 8 digits, check digit."""
    letter = R.choice(string.ascii_uppercase)
    body = "".join(R.choice(string.digits) for _ in range(8))
    seq = f"{ord(letter) - 64:02d}" + body
    check = sum(cross_sum(int(d) * (1 if i % 2 == 0 else 2)) for i, d in enumerate(seq)) % 10
    return f"{letter}{body}{check}"


def passport():
    if R.random() < 0.6:
        alphabet = "CFGHJKLMNPRTVWXYZ"
        return R.choice(alphabet) + "".join(R.choice(alphabet + string.digits) for _ in range(5)) + "".join(R.choice(string.digits) for _ in range(3))
    return R.choice(["C", "X", "Y"]) + "".join(R.choice(string.digits) for _ in range(8))


def group(s, n=4, sep=" "):
    return sep.join(s[i:i + n] for i in range(0, len(s), n))


def card():
    f = FAKE["en"]
    kind = R.choice(["visa16", "mastercard", "amex", "discover", "visa16"])
    num = f.credit_card_number(card_type=kind)
    assert luhn.is_valid(num)
    style = R.random()
    if kind == "amex":
        return num if style < 0.5 else f"{num[:4]} {num[4:10]} {num[10:]}"
    return num if style < 0.3 else group(num, 4, " " if style < 0.8 else "-")


def an_iban():
    cc = R.choice(["de", "de", "de", "gb", "at", "nl", "fr", "ch"])
    loc = {"de": "de_DE", "gb": "en_GB", "at": "de_AT", "nl": "nl_NL", "fr": "fr_FR", "ch": "de_CH"}[cc]
    v = Faker(loc).iban()
    assert std_iban.is_valid(v), v
    return group(v) if R.random() < 0.6 else v


def phone(lang):
    if lang == "de":
        v = FAKE["de"].phone_number()
    else:
        v = FAKE[R.choice(["en", "gb"])].phone_number()
    return v


def dob(lang):
    d = FAKE["de"].date_of_birth(minimum_age=18, maximum_age=90)
    if lang == "de":
        months = ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober", "November", "Dezember"]
        return R.choice([d.strftime("%d.%m.%Y"), f"{d.day}. {months[d.month - 1]} {d.year}", d.strftime("%Y-%m-%d")])
    return R.choice([d.strftime("%B %d, %Y"), d.strftime("%d/%m/%Y"), d.strftime("%Y-%m-%d"), f"{d.day} {d.strftime('%B')} {d.year}"])


def address(lang):
    if lang == "de":
        f = FAKE["de"]
        street = f.street_name()
        if R.random() < 0.5:
            street = street.replace("str.", "straße")
        s = f"{street} {f.building_number()}"
        return s if R.random() < 0.3 else f"{s}, {f.postcode()} {f.city()}"
    f = FAKE["en"]
    return f"{f.building_number()} {f.street_name()}, {f.city()}, {f.state_abbr()} {f.postcode()}"


def person(lang):
    f = FAKE["de"] if lang == "de" else FAKE["en"]
    return f"{f.first_name()} {f.last_name()}"


VALUES = {
    "EMAIL": lambda lang: FAKE[lang if lang == "de" else "en"].email(),
    "PHONE": phone,
    "IBAN": lambda lang: an_iban(),
    "CREDIT_CARD": lambda lang: card(),
    "IP_ADDRESS": lambda lang: FAKE["en"].ipv4() if R.random() < 0.8 else FAKE["en"].ipv6(),
    "URL": lambda lang: FAKE["en"].url() + R.choice(["", "kontakt", "account?id=42", "login"]),
    "DATE_OF_BIRTH": dob,
    "DE_TAX_ID": lambda lang: (lambda v: v if R.random() < 0.6 else v[:2] + " " + group(v[2:], 3))(tax_id()),
    "DE_SOCIAL_SECURITY": lambda lang: rvnr(),
    "DE_HEALTH_INSURANCE": lambda lang: kvnr(),
    "VAT_ID": lambda lang: vat_id(),
    "PASSPORT": lambda lang: passport(),
    "PERSON": person,
    "ADDRESS": address,
}

TEMPLATES = {
    "de": {
        "EMAIL": ["Bitte schreiben Sie an {v}, wir antworten innerhalb von 24 Stunden.", "Kontakt: {v}", "Die Rechnung ging an {v} raus."],
        "PHONE": ["Sie erreichen mich unter {v}.", "Tel.: {v}", "Rufen Sie uns an: {v} (Mo–Fr 9–17 Uhr)", "Mobil {v}, gerne auch per WhatsApp."],
        "IBAN": ["Bitte überweisen Sie den Betrag auf IBAN {v}.", "Kontoverbindung: {v}, Sparkasse", "Meine neue Bankverbindung lautet {v}."],
        "CREDIT_CARD": ["Zahlung mit Karte {v}, gültig bis 09/27.", "Kreditkartennummer: {v}", "Bitte belasten Sie die Karte {v}."],
        "IP_ADDRESS": ["Der Zugriff kam von {v} um 03:12 Uhr.", "Server-IP: {v}", "Login-Versuch von {v} blockiert."],
        "URL": ["Mehr Infos unter {v}.", "Hier geht's zum Formular: {v}", "Link zum Profil: {v}"],
        "DATE_OF_BIRTH": ["Geburtsdatum: {v}", "Ich bin am {v} geboren.", "geb. {v} in Köln"],
        "DE_TAX_ID": ["Meine Steuer-ID ist {v}.", "Steueridentifikationsnummer: {v}", "IdNr. {v} bitte im Formular eintragen."],
        "DE_SOCIAL_SECURITY": ["Sozialversicherungsnummer: {v}", "Meine Rentenversicherungsnummer lautet {v}.", "SV-Nr. {v}"],
        "DE_HEALTH_INSURANCE": ["Krankenversichertennummer {v}", "Versichertennummer: {v}, TK", "Meine KVNR ist {v}."],
        "VAT_ID": ["USt-IdNr.: {v}", "Unsere Umsatzsteuer-ID lautet {v}.", "Rechnung an Firma mit USt-ID {v}."],
        "PASSPORT": ["Reisepassnummer: {v}", "Personalausweis-Nr. {v}, gültig bis 2031.", "Passnummer {v}"],
        "PERSON": ["Sehr geehrte Frau {v},", "Ihr Ansprechpartner ist {v}.", "Herr {v} hat angerufen.", "Viele Grüße, {v}"],
        "ADDRESS": ["Lieferadresse: {v}", "Bitte senden Sie die Ware an {v}.", "Unser Büro ist in der {v}."],
    },
    "en": {
        "EMAIL": ["Please email {v} and we will get back within a day.", "Contact: {v}", "The invoice was sent to {v}."],
        "PHONE": ["You can reach me at {v}.", "Phone: {v}", "Call us on {v} (Mon–Fri).", "Mobile {v}, text is fine too."],
        "IBAN": ["Please transfer the amount to IBAN {v}.", "Bank details: {v}", "My new account is {v}."],
        "CREDIT_CARD": ["Pay with card {v}, expiry 09/27.", "Card number: {v}", "Please charge {v} for the renewal."],
        "IP_ADDRESS": ["The request came from {v} at 3:12 am.", "Server IP: {v}", "Blocked login attempt from {v}."],
        "URL": ["More at {v}.", "Here is the form: {v}", "Profile link: {v}"],
        "DATE_OF_BIRTH": ["Date of birth: {v}", "I was born on {v}.", "DOB {v}"],
        "DE_TAX_ID": ["My German tax ID is {v}.", "Tax identification number: {v}"],
        "DE_SOCIAL_SECURITY": ["German social security number: {v}", "My pension insurance number is {v}."],
        "DE_HEALTH_INSURANCE": ["Health insurance number {v}", "Insurance no.: {v}"],
        "VAT_ID": ["VAT ID: {v}", "Our VAT number is {v}.", "Bill the company with VAT {v}."],
        "PASSPORT": ["Passport number: {v}", "ID card no. {v}, valid until 2031.", "passport {v}"],
        "PERSON": ["Dear {v},", "Your contact is {v}.", "Mr. {v} called.", "Best regards, {v}"],
        "ADDRESS": ["Ship to {v}.", "Please send the parcel to {v}.", "Our office is at {v}."],
    },
}

NEGATIVES = {
    "de": ["Bestellnummer {n10}, Lieferung in 3–5 Werktagen.", "Der Preis beträgt {p} EUR inkl. MwSt.", "Termin am {date} um {time} Uhr.",
           "Version {ver} ist jetzt verfügbar.", "Artikelnummer {n8} ist wieder auf Lager.", "Ihre Kundennummer: {n9}",
           "Die Kampagne lief vom {date} bis {date2}.", "Sendungsnummer {n12}", "Bitte überweisen Sie auf IBAN {bad_iban}.",
           "Karte {bad_card} wurde abgelehnt.", "Rabattcode SOMMER{n2} gilt bis Sonntag.", "Im Jahr {year} wuchs der Umsatz um {pct} %.",
           "Ticket #{n6} wurde geschlossen.", "PLZ-Bereich {plz} bis {plz2} wird beliefert.", "Gewicht: {p} kg, Maße {n2}x{n2}x{n2} cm."],
    "en": ["Order number {n10}, delivery in 3–5 business days.", "The price is {p} USD including tax.", "Meeting on {date} at {time}.",
           "Version {ver} is now available.", "Item {n8} is back in stock.", "Your customer number: {n9}",
           "The campaign ran from {date} to {date2}.", "Tracking number {n12}", "Please pay to IBAN {bad_iban}.",
           "Card {bad_card} was declined.", "Use code SUMMER{n2} until Sunday.", "In {year} revenue grew by {pct}%.",
           "Ticket #{n6} was closed.", "Zip codes {plz} to {plz2} are covered.", "Weight: {p} lb, size {n2}x{n2}x{n2} in."],
}


def digits(n):
    return str(R.randint(1, 9)) + "".join(R.choice(string.digits) for _ in range(n - 1))


def bad_iban():
    v = FAKE["de"].iban()
    i = R.randint(5, len(v) - 1)
    v = v[:i] + str((int(v[i]) + R.randint(1, 9)) % 10) + v[i + 1:]
    assert not std_iban.is_valid(v)
    return group(v)


def bad_card():
    v = FAKE["en"].credit_card_number(card_type="visa16")
    v = v[:-1] + str((int(v[-1]) + R.randint(1, 9)) % 10)
    assert not luhn.is_valid(v)
    return group(v)


def negative(lang):
    t = R.choice(NEGATIVES[lang])
    d = FAKE["de"].date_between(start_date="-2y", end_date="+1y")
    fill = {
        "n10": digits(10), "n8": digits(8), "n9": digits(9), "n12": digits(12), "n6": digits(6), "n2": str(R.randint(10, 99)),
        "p": f"{R.randint(1, 999)},{R.randint(0, 99):02d}" if lang == "de" else f"{R.randint(1, 999)}.{R.randint(0, 99):02d}",
        "date": d.strftime("%d.%m.%Y") if lang == "de" else d.strftime("%m/%d/%Y"), "date2": d.strftime("%d.%m.%Y") if lang == "de" else d.strftime("%B %d, %Y"),
        "time": f"{R.randint(8, 19)}:{R.choice(['00', '15', '30', '45'])}", "ver": f"{R.randint(1, 9)}.{R.randint(0, 20)}.{R.randint(0, 9)}",
        "bad_iban": bad_iban(), "bad_card": bad_card(), "year": str(R.randint(2015, 2026)), "pct": str(R.randint(2, 40)),
        "plz": f"{R.randint(10000, 49999)}", "plz2": f"{R.randint(50000, 99999)}",
    }
    for k, v in fill.items():
        t = t.replace("{" + k + "}", v, 1)
        t = t.replace("{" + k + "}", v)
    return t


FILLER = {
    "de": ["Vielen Dank für Ihre Nachricht.", "Unser Team meldet sich zeitnah.", "Die neue Kollektion ist ab Montag im Handel.", "",
           "Bei Fragen helfen wir gern weiter.", "Das Angebot gilt solange der Vorrat reicht."],
    "en": ["Thanks for your message.", "Our team will be in touch shortly.", "The new collection arrives in stores on Monday.", "",
           "Happy to help with any questions.", "Offer valid while stocks last."],
}


def example(lang, n_entities):
    parts, entities = [], []
    text = ""
    types = R.sample(list(TEMPLATES[lang]), n_entities)
    for i, t in enumerate(types):
        tmpl = R.choice(TEMPLATES[lang][t])
        v = VALUES[t](lang)
        before, after = tmpl.split("{v}")
        sep = "" if not text else " "
        start = len(text) + len(sep) + len(before)
        text = text + sep + before + v + after
        entities.append({"type": t, "start": start, "end": start + len(v)})
        if R.random() < 0.4:
            filler = R.choice(FILLER[lang])
            if filler:
                text += " " + filler
    return {"text": text, "lang": lang, "entities": entities}


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    rows = []
    for i in range(n):
        lang = "de" if i % 2 == 0 else "en"
        r = R.random()
        if r < 0.3:
            text = negative(lang) + (" " + negative(lang) if R.random() < 0.3 else "")
            rows.append({"text": text, "lang": lang, "entities": []})
        else:
            rows.append(example(lang, 1 if r < 0.75 else R.randint(2, 3)))
    for row in rows:
        for e in row["entities"]:
            assert 0 <= e["start"] < e["end"] <= len(row["text"])
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.normpath(os.path.join(here, "..", "crates", "guard", "data", "pii_eval.jsonl"))
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(rows)} texts, {sum(len(r['entities']) for r in rows)} entities -> {path}")


if __name__ == "__main__":
    main()
