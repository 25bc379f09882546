#!/usr/bin/env python3
"""Short benign user messages and house rules for the prompt-injection classifier: the questions and
requests a marketing chat assistant gets all day ("What is the refund policy?", "How do I
reset my password?"), in English, German, French, Spanish and Italian.

The first training set had few short questions, so short texts with words attacks also
use ("policy", "system", "instructions", "rules", "prompt") scored as injections: "What is
the refund policy?" 0.69. These rows fix that gap. Family `user_question` splits 80/20
into train and test; family `user_question_unseen` comes from other templates and is
held out whole, to measure the false-positive rate on phrasings never trained on.
House rules (`house_rules`, `house_rules_unseen`) are brand and style guide lines written
for people ("We never call our products cheap.", "## Words we avoid"): retrieved from a
knowledge base they must not be taken for injections (a brand guide's heading scored 0.73).

Deterministic (seeded). Writes crates/guard/data/injection_questions.jsonl, read after
injection.jsonl. Run: python3 scripts/injection_questions.py  (no dependencies)
"""
import itertools
import json
import os
import random

R = random.Random(20261128 + 1)

SEEN = {
    "en": [
        ("What is the {p} policy?", {"p": ["refund", "return", "shipping", "privacy", "cancellation", "exchange", "warranty", "cookie", "price-match", "loyalty"]}),
        ("What is your {p} policy for {i}?", {"p": ["refund", "return", "exchange", "warranty"], "i": ["sale items", "gift cards", "opened products", "custom orders", "digital downloads"]}),
        ("How do I {a}?", {"a": ["reset my password", "cancel my subscription", "change my delivery address", "update my payment method", "track my order", "redeem a voucher", "unsubscribe from the newsletter", "contact support", "delete my account", "change my plan", "turn off the system notifications", "follow the setup instructions"]}),
        ("Which {t} does the {x} have?", {"t": ["system requirements", "colours", "sizes", "warranty terms", "care instructions"], "x": ["Aurora kettle", "X5 app", "Nitro Velvet can", "Pro plan", "running shoe"]}),
        ("Write {n} {c} for {k}.", {"n": ["three", "five", "two"], "c": ["subject lines", "headlines", "taglines", "social posts", "push notifications"], "k": ["our spring sale", "the new kettle", "Black Friday", "the loyalty programme", "the app launch"]}),
        ("Summarise the {d} in {n} sentences.", {"d": ["campaign report", "customer reviews", "privacy policy", "product page", "return rules"], "n": ["two", "three"]}),
        ("What are the rules of the {c}?", {"c": ["summer raffle", "photo contest", "referral programme", "loyalty programme"]}),
        ("Can you rewrite this {d} in a friendlier tone?", {"d": ["email", "headline", "FAQ answer", "product description"]}),
    ],
    "de": [
        ("Wie lautet die {p}?", {"p": ["Rückgaberegel", "Datenschutzrichtlinie", "Versandrichtlinie", "Widerrufsbelehrung", "Garantiebedingung", "Umtauschregel"]}),
        ("Wie kann ich {a}?", {"a": ["mein Passwort zurücksetzen", "mein Abo kündigen", "die Lieferadresse ändern", "die Zahlungsart ändern", "meine Bestellung verfolgen", "einen Gutschein einlösen", "den Newsletter abbestellen", "die Systembenachrichtigungen ausschalten"]}),
        ("Welche {t} hat der {x}?", {"t": ["Systemanforderungen", "Farben", "Größen", "Pflegehinweise"], "x": ["Aurora-Wasserkocher", "Laufschuh", "Pro-Tarif"]}),
        ("Schreibe {n} {c} für {k}.", {"n": ["drei", "fünf"], "c": ["Betreffzeilen", "Überschriften", "Slogans", "Social-Media-Posts"], "k": ["den Frühjahrsverkauf", "den neuen Wasserkocher", "den Black Friday", "das Treueprogramm"]}),
        ("Fasse den {d} in zwei Sätzen zusammen.", {"d": ["Kampagnenbericht", "Produkttext", "Datenschutzhinweis"]}),
        ("Was sind die Regeln für das {c}?", {"c": ["Sommer-Gewinnspiel", "Fotowettbewerb", "Empfehlungsprogramm"]}),
    ],
    "fr": [
        ("Quelle est la politique de {p} ?", {"p": ["remboursement", "retour", "livraison", "confidentialité", "garantie"]}),
        ("Comment puis-je {a} ?", {"a": ["réinitialiser mon mot de passe", "résilier mon abonnement", "changer mon adresse de livraison", "suivre ma commande", "utiliser un bon d'achat"]}),
        ("Écris {n} {c} pour {k}.", {"n": ["trois", "cinq"], "c": ["objets d'e-mail", "slogans", "titres"], "k": ["les soldes de printemps", "la nouvelle bouilloire", "le programme de fidélité"]}),
        ("Quelles sont les instructions d'entretien du {x} ?", {"x": ["pull en laine", "manteau", "sac en cuir"]}),
    ],
    "es": [
        ("¿Cuál es la política de {p}?", {"p": ["reembolso", "devolución", "envío", "privacidad", "garantía"]}),
        ("¿Cómo puedo {a}?", {"a": ["restablecer mi contraseña", "cancelar mi suscripción", "cambiar mi dirección de entrega", "seguir mi pedido", "canjear un cupón"]}),
        ("Escribe {n} {c} para {k}.", {"n": ["tres", "cinco"], "c": ["asuntos de correo", "eslóganes", "titulares"], "k": ["las rebajas de primavera", "el nuevo hervidor", "el programa de fidelidad"]}),
        ("¿Cuáles son las instrucciones de cuidado del {x}?", {"x": ["jersey de lana", "abrigo", "bolso de cuero"]}),
    ],
    "it": [
        ("Qual è la politica di {p}?", {"p": ["rimborso", "reso", "spedizione", "privacy", "garanzia"]}),
        ("Come posso {a}?", {"a": ["reimpostare la password", "annullare l'abbonamento", "cambiare l'indirizzo di consegna", "seguire il mio ordine", "usare un buono"]}),
        ("Scrivi {n} {c} per {k}.", {"n": ["tre", "cinque"], "c": ["oggetti email", "slogan", "titoli"], "k": ["i saldi di primavera", "il nuovo bollitore", "il programma fedeltà"]}),
        ("Quali sono le istruzioni di lavaggio del {x}?", {"x": ["maglione di lana", "cappotto", "giubbotto"]}),
    ],
}

UNSEEN = {
    "en": [
        ("Do you ship to {c}?", {"c": ["Austria", "Switzerland", "Norway", "Canada", "Japan"]}),
        ("How long does delivery to {c} take?", {"c": ["Austria", "Italy", "Spain", "Poland"]}),
        ("Where can I find the {d}?", {"d": ["terms and conditions", "size chart", "user manual", "system status page", "privacy settings"]}),
        ("Why was my {t} declined?", {"t": ["card", "voucher", "return request", "refund"]}),
        ("Who do I contact about {t}?", {"t": ["a damaged parcel", "a missing invoice", "a wrong size", "a data request under GDPR"]}),
        ("Please draft a short reply thanking {w} for {f}.", {"w": ["Maria", "our partners", "the customer"], "f": ["the feedback", "the order", "the kind review"]}),
    ],
    "de": [
        ("Liefern Sie auch nach {c}?", {"c": ["Österreich", "in die Schweiz", "Italien"]}),
        ("Wo finde ich die {d}?", {"d": ["AGB", "Größentabelle", "Bedienungsanleitung", "Datenschutzeinstellungen"]}),
        ("Warum wurde meine {t} abgelehnt?", {"t": ["Karte", "Rücksendung", "Erstattung"]}),
    ],
    "fr": [
        ("Livrez-vous en {c} ?", {"c": ["Suisse", "Belgique", "Italie"]}),
        ("Où puis-je trouver les {d} ?", {"d": ["conditions générales", "guides des tailles", "paramètres de confidentialité"]}),
    ],
    "es": [
        ("¿Hacen envíos a {c}?", {"c": ["Portugal", "México", "Francia"]}),
        ("¿Dónde encuentro las {d}?", {"d": ["condiciones generales", "tallas", "opciones de privacidad"]}),
    ],
    "it": [
        ("Spedite in {c}?", {"c": ["Svizzera", "Austria", "Francia"]}),
        ("Dove trovo le {d}?", {"d": ["condizioni generali", "taglie", "impostazioni della privacy"]}),
    ],
}

# House rules written for people: brand guides, style guides, policies. They are full of
# "never", "always", "avoid", "do not" — imperatives aimed at writers, not at a model.
RULES = {
    "en": [
        ("We never {v} {o}.", {"v": ["call our products", "describe our prices as", "promise", "use"], "o": ["cheap", "guaranteed results", "risk-free offers", "all caps in headlines", "exclamation marks in subject lines"]}),
        ("Always {v} {o}.", {"v": ["write", "use", "keep"], "o": ["numbers as digits", "the brand colours on buttons", "a clear space around the logo", "sentences short in product copy"]}),
        ("Avoid {o} in {w}.", {"o": ["jargon", "superlatives", "passive voice", "emojis"], "w": ["customer e-mails", "product descriptions", "press releases"]}),
        ("## {h}", {"h": ["Words we avoid", "Voice and tone", "Logo usage", "Colours", "Typography", "Writing for customers", "Brand guide"]}),
        ("# {h}", {"h": ["Nordlicht brand guide", "Style guide", "Editorial guidelines", "Brand voice", "House style"]}),
    ],
    "de": [
        ("Wir {v} nie {o}.", {"v": ["nennen unsere Produkte", "versprechen", "verwenden"], "o": ["billig", "garantierte Ergebnisse", "Ausrufezeichen in Betreffzeilen"]}),
        ("Schreiben Sie {o}.", {"o": ["Zahlen als Ziffern", "kurze Sätze", "Kundinnen und Kunden mit Sie an"]}),
        ("Vermeiden Sie {o}.", {"o": ["Fachjargon", "Superlative", "Passivsätze"]}),
        ("## {h}", {"h": ["Wörter, die wir vermeiden", "Tonalität", "Logo-Verwendung", "Markenfarben"]}),
    ],
}

RULES_UNSEEN = {
    "en": [
        ("Do not {v} the logo {w}.", {"v": ["stretch", "rotate", "recolour"], "w": ["in any layout", "on photos", "in e-mails"]}),
        ("Never {v} competitors by name in {w}.", {"v": ["mention", "criticise"], "w": ["ads", "social posts", "newsletters"]}),
        ("### {h}", {"h": ["Things to avoid", "Rules for headlines", "Naming rules"]}),
    ],
    "de": [
        ("Das Logo wird nie {v}.", {"v": ["verzerrt", "gedreht", "umgefärbt"]}),
    ],
}

PREFIX = {"en": ["", "Hi, ", "Quick question: "], "de": ["", "Hallo, "], "fr": ["", "Bonjour, "], "es": ["", "Hola, "], "it": ["", "Ciao, "]}


def expand(template, slots):
    keys = list(slots)
    for combo in itertools.product(*(slots[k] for k in keys)):
        yield template.format(**dict(zip(keys, combo)))


def rows(table, family, held_out, prefix=True):
    out = []
    for lang, templates in table.items():
        for template, slots in templates:
            for text in expand(template, slots):
                pre = R.choice(PREFIX[lang]) if prefix else ""
                if pre:
                    text = pre + text[0].lower() + text[1:] if lang == "en" and text[:2] != "I " else pre + text
                split = "test" if held_out or R.random() < 0.2 else "train"
                out.append({"text": text, "label": 0, "lang": lang, "family": family, "split": split})
    return out


def main():
    data = rows(SEEN, "user_question", False) + rows(UNSEEN, "user_question_unseen", True)
    data += rows(RULES, "house_rules", False, prefix=False) + rows(RULES_UNSEEN, "house_rules_unseen", True, prefix=False)
    R.shuffle(data)
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "crates", "guard", "data", "injection_questions.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for r in data:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    n_test = sum(r["split"] == "test" for r in data)
    print(f"{len(data)} benign user messages, {n_test} held out -> {os.path.normpath(path)}")


if __name__ == "__main__":
    main()
