"""A labelled set for the personal-data detectors: realistic personal data made with Faker in several
locales (recall) and hard negatives written here (precision): numbers in maths, code, dates,
versions and ids, and common words or public figures that look like names.

`labelled_texts()` gives (text, [(kind, value), ...]); each value occurs in its text. Nothing here is
copied from a dataset; every text is generated or written for this file.
"""

from __future__ import annotations

import random

from faker import Faker

LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR")

TEMPLATES = {
    "email": ["Please write to {} with the invoice.", "My address is {}, thanks.", "cc: {}"],
    "phone": ["Call me on {} after five.", "You can reach me at {}.", "Tel. {}", "my mobile: {}"],
    "iban": ["Refund to IBAN {} please.", "Account {} (the new one)."],
    "credit_card": ["My card {} was charged twice.", "Card number: {}"],
    "ip_address": ["The login came from {} yesterday.", "Server {} refuses the connection."],
    "name": ["Hello, my name is {} and my parcel is late.", "Regards, {}", "Dear {}, your ticket is closed.",
             "This is {} from accounting."],
}

# Text that holds numbers or capitalised words a careless detector takes for personal data.
HARD_NEGATIVES = [
    "The ratio is 0.3571428571 after rounding.",
    "Pi is roughly 3.14159265358979 and e is 2.718281828459.",
    "The sum 123456 + 654321 = 777777 is easy to check.",
    "Compute 4915 * 7632 = 37511280 and then divide by 12.",
    "In the study (1999) and its follow-up (2004) the effect held.",
    "See https://example.org/item/4915763208/details for the listing.",
    "The order id is 4000123412341234 in the export file.",
    "Timestamp 2024-03-05 14:22:31 UTC, duration 00:12:44.",
    "Logged at 1709648551 (unix time) and again at 1709648612.",
    "Upgrade from v2.11.3 to 3.0.0-rc.1 fixed it.",
    "The build 20240305.1412 passed; checksum 5d41402abc4b2a76b9719d911017c592.",
    "Python 3.11.7 on Linux 6.5.0-1027, numpy 1.26.4.",
    "x = [0.125, 0.25, 0.5]; y = 1024 * 768 * 3",
    "The population grew from 1,234,567 to 2,345,678 between 2001 and 2011.",
    "Coordinates 48.137154, 11.576124 are in the city centre.",
    "ISBN 978-3-16-148410-0 is the second edition.",
    "Part no. 1234-5678-9012 fits the 2019 model.",
    "Can you check the status? My order has not arrived.",
    "World Cup tickets go on sale in May.",
    "Will the update arrive before Christmas?",
    "Albert Einstein published the theory of relativity in 1905.",
    "Marie Curie won two Nobel Prizes.",
    "Best practice is to restart the router first.",
    "Dear Customer Service, the app crashes on start.",
    "Hi Team, the export is broken again.",
    "The version string 1.2.840.113549 is an OID, not an address.",
    "Latency went from 192.5 ms to 168.1 ms.",
    "Matrix 10 20 30 40 50 60 70 80 with determinant 0.",
    "Set the timeout to 3600 seconds and retries to 5.",
    "The hash 0x7fffffffffffffff is the largest signed value.",
    "Hey! Can you pass that to me?",
    "Hello World is the first program everyone writes.",
    "Hi, My printer stopped again.",
    "Thanks, Will do that tomorrow.",
    "Dear Sir or Madam, please find the file attached.",
    "The call lasted 45 minutes and cost 12.50 EUR.",
    "Room 4102, floor 3, building 7.",
    "Error 0x80070005 (access denied) at 10:42.",
    "The answer is 1234567 divided by 7, which is 176366.71.",
]


def labelled_texts(seed: int = 20261202, per_kind: int = 40, bare: bool = False) -> list[tuple[str, list[tuple[str, str]]]]:
    """Each value in a sentence of its kind (`bare`: the value alone, without the words around it that
    help a detector), then the hard negatives."""
    rng = random.Random(seed)
    cases: list[tuple[str, list[tuple[str, str]]]] = []
    for index in range(per_kind):
        fake = Faker(LOCALES[index % len(LOCALES)])
        fake.seed_instance(seed + index)
        values = {
            "email": fake.email(),
            "phone": fake.phone_number(),
            "iban": fake.iban(),
            "credit_card": fake.credit_card_number(),
            "ip_address": fake.ipv4_public() if index % 3 else fake.ipv6(),
            "name": f"{fake.first_name()} {fake.last_name()}",
        }
        for kind, value in values.items():
            template = "{}" if bare else rng.choice(TEMPLATES[kind])
            cases.append((template.format(value), [(kind, value)]))
    cases += [(text, []) for text in HARD_NEGATIVES]
    return cases


def score(find, cases) -> dict[str, dict[str, float]]:
    """Precision and recall per detector. A finding counts as true when it overlaps a labelled value of
    the same kind; a labelled value counts as found when a finding of its kind overlaps it."""
    stats = {kind: {"tp": 0, "fp": 0, "fn": 0} for kind in TEMPLATES}
    for text, labels in cases:
        spans = [(kind, text.index(value), text.index(value) + len(value)) for kind, value in labels]
        findings = find(text)
        for finding in findings:
            hit = any(k == finding.kind and s < finding.end and finding.start < e for k, s, e in spans)
            stats[finding.kind]["tp" if hit else "fp"] += 1
        for kind, start, end in spans:
            if not any(f.kind == kind and f.start < end and start < f.end for f in findings):
                stats[kind]["fn"] += 1
    result = {}
    for kind, s in stats.items():
        precision = s["tp"] / (s["tp"] + s["fp"]) if s["tp"] + s["fp"] else 1.0
        recall = s["tp"] / (s["tp"] + s["fn"]) if s["tp"] + s["fn"] else 1.0
        result[kind] = {"precision": round(precision, 3), "recall": round(recall, 3), **s}
    return result
