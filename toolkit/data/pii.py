"""Personal data in training text: emails, phone numbers, IBANs, card numbers, IP addresses, names.

Every detector runs offline. Matches are checked, not just pattern-matched: card numbers must pass
the Luhn check, IBANs the ISO 13616 mod-97 check, IP addresses must parse, phone numbers must be
valid numbers (Google's libphonenumber metadata through `phonenumbers`). Names are found by a
heuristic (a greeting, sign-off or introduction followed by a capitalised name, or a first name
from `policies/pii/first_names.txt` followed by a capitalised surname): precise on support-style
text, but no substitute for a trained NER model on free prose.

Findings never carry the personal data itself into a report: examples are masked.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

DETECTORS = ("email", "phone", "iban", "credit_card", "ip_address", "name")
PLACEHOLDERS = {kind: f"[{kind.upper()}]" for kind in DETECTORS}
FIRST_NAMES_FILE = Path("policies/pii/first_names.txt")

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}(?![\w-])")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_IBAN = re.compile(r"(?<![A-Z0-9])[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,3})?)(?![A-Z0-9])")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_DIGIT = re.compile(r"\d")
_PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d[\d ()./-]{5,18}\d(?![\w])")
_NAME = r"[A-Z](?:'[A-Z])?[a-z\u00C0-\u017F]+(?:-[A-Z]?[a-z\u00C0-\u017F]+)?"
_NAME_CUES = re.compile(
    rf"\b(?:[Mm]y name is|[Tt]his is|[Dd]ear|[Hh]i|[Hh]ello|[Hh]ey|[Rr]egards|[Tt]hanks|[Tt]hank you|[Cc]heers|"
    rf"[Ss]incerely|[Bb]est|[Yy]ours)[,!.:]?\s+({_NAME}(?:\s+{_NAME})?)")
_CAPITALISED = re.compile(rf"\b{_NAME}\b")
# Capitalised words that follow a cue but are not names ("Hi Team", "Thanks Again").
_NOT_NAMES = {"team", "there", "all", "again", "support", "everyone", "sir", "madam", "you", "so", "a", "in",
              "for", "the", "regards", "wishes", "customer", "service", "thanks", "and", "to", "from", "i"}


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int
    value: str

    def masked(self) -> str:
        return f"{self.value[:1]}***{self.value[-1:]}" if len(self.value) > 4 else "***"


@dataclass
class PiiSummary:
    action: str
    by_type: Counter = field(default_factory=Counter)
    records: set[int] = field(default_factory=set)
    examples: list[dict] = field(default_factory=list)


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    compact = candidate.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


class PiiScanner:
    """The configured detectors, ready to scan many texts (repeated texts, like a system prompt, once)."""

    def __init__(self, detectors: tuple[str, ...] = DETECTORS, phone_regions: tuple[str, ...] = ("DE",),
                 first_names_file: Path = FIRST_NAMES_FILE):
        self.detectors, self.phone_regions = detectors, phone_regions
        self.first_names = _first_names(str(Path(first_names_file).resolve()))
        self.find = lru_cache(maxsize=8192)(self._find)

    def _find(self, text: str) -> tuple[Finding, ...]:
        """Non-overlapping findings in text order; the checked, more specific detectors win overlaps."""
        detectors = self.detectors
        findings: list[Finding] = []

        def add(kind: str, start: int, end: int) -> None:
            if not any(f.start < end and start < f.end for f in findings):
                findings.append(Finding(kind, start, end, text[start:end]))

        if "email" in detectors and "@" in text:
            for match in _EMAIL.finditer(text):
                add("email", *match.span())
        has_digit = _DIGIT.search(text) is not None
        if "iban" in detectors and has_digit:
            for match in _IBAN.finditer(text):
                if iban_valid(match.group()):
                    add("iban", *match.span())
        if "credit_card" in detectors and has_digit:
            for match in _CARD.finditer(text):
                if luhn_valid(re.sub(r"\D", "", match.group())):
                    add("credit_card", *match.span())
        if "ip_address" in detectors and (has_digit or ":" in text):
            for pattern in (_IPV4, _IPV6):
                for match in pattern.finditer(text):
                    if _is_ip(match.group()):
                        add("ip_address", *match.span())
        if "phone" in detectors and has_digit:
            for match in _PHONE.finditer(text):
                if _is_phone(match.group(), self.phone_regions):
                    add("phone", *match.span())
        if "name" in detectors:
            for match in _NAME_CUES.finditer(text):
                if match.group(1).split()[0].lower() not in _NOT_NAMES:
                    add("name", *match.span(1))
            words = list(_CAPITALISED.finditer(text))
            for first, last in zip(words, words[1:]):
                if (first.group() in self.first_names and text[first.end():last.start()].isspace()
                        and last.group().lower() not in _NOT_NAMES):
                    add("name", first.start(), last.end())
        return tuple(sorted(findings, key=lambda f: f.start))


def find_pii(text: str, detectors: tuple[str, ...] = DETECTORS, phone_regions: tuple[str, ...] = ("DE",)) -> list[Finding]:
    """Findings in one text (for many texts, build one PiiScanner and reuse it)."""
    return list(PiiScanner(detectors, phone_regions).find(text))


def redact(text: str, findings: list[Finding]) -> str:
    for finding in sorted(findings, key=lambda f: f.start, reverse=True):
        text = text[: finding.start] + PLACEHOLDERS[finding.kind] + text[finding.end:]
    return text


def _is_ip(candidate: str) -> bool:
    if candidate.count(":") >= 2 and not re.search(r"[0-9A-Fa-f]", candidate):
        return False  # "::" alone, or a run of colons in prose
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def _is_phone(candidate: str, regions: tuple[str, ...]) -> bool:
    import phonenumbers

    digits = re.sub(r"\D", "", candidate)
    if not 7 <= len(digits) <= 15 or re.fullmatch(r"\d{1,4}([./-])\d{1,2}\1\d{1,4}", candidate.strip()):
        return False  # too short/long for E.164, or a date
    international = candidate.lstrip("(").startswith(("+", "00"))
    for region in (None,) if international else regions:
        try:
            number = phonenumbers.parse(candidate.replace("00", "+", 1) if candidate.startswith("00") else candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return True
    return False


@lru_cache(maxsize=4)
def _first_names(path: str) -> frozenset[str]:
    if not Path(path).is_file():
        return frozenset()
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))
