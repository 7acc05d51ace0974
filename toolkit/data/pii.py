"""Personal data in training text: emails, phone numbers, IBANs, card numbers, IP addresses, names.

Every detector runs offline. Matches are checked, not just pattern-matched: card numbers must pass
the Luhn check, IBANs the ISO 13616 mod-97 check, IP addresses must parse, phone numbers must be
valid or possible numbers (Google's libphonenumber metadata through `phonenumbers`). Names are found
by a heuristic (a greeting, sign-off or introduction followed by a capitalised name, or a first name
from `policies/pii/first_names.txt` followed by a capitalised surname): precise on support-style
text, but no substitute for a trained NER model on free prose.

Numbers are where checks alone fail: decimals, timestamps, ids in URLs and results of arithmetic
pass libphonenumber or Luhn by chance. So phone and card candidates get a score in [0, 1] from their
form (an international prefix, the grouping people write, a bare run of digits) and the words
around them (`call me on`, `card` raise it; `order id`, `=`, `/`, `version` lower it or rule it out);
a finding counts when its score reaches the detector's threshold (`data.pii.min_score`, 0.5).
Measured precision and recall per detector are in docs/benchmarks.md (tests/pii_eval_set.py).

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
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){11,18}(?![\d-])")
_IBAN = re.compile(r"(?<![A-Z0-9])[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,3})?)(?![A-Z0-9])")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_DIGIT = re.compile(r"\d")
_PHONE = re.compile(r"(?<![\w+.])(?:\+|00)?\(?\d[\d ()./-]{5,18}\d(?:\s?(?:x|ext\.?)\s?\d{1,6})?(?![\w])")
_NAME = r"[A-Z\u00C0-\u00D6\u00D8-\u00DE](?:'[A-Z])?[a-z\u00DF-\u017F]+(?:-[A-Z\u00C0-\u00DE]?[a-z\u00DF-\u017F]+)?"
_NAME_CUES = re.compile(
    rf"\b(?:[Mm]y name is|[Tt]his is|[Dd]ear|[Hh]i|[Hh]ello|[Hh]ey|[Rr]egards|[Tt]hanks|[Tt]hank you|[Cc]heers|"
    rf"[Ss]incerely|[Bb]est|[Yy]ours)[,!.:]?\s+({_NAME}(?:\s+{_NAME})?)")
_CAPITALISED = re.compile(rf"\b{_NAME}\b")
# Capitalised words that follow a cue but are not names ("Hi Team", "Thanks Again").
_NOT_NAMES = {"team", "there", "all", "again", "support", "everyone", "sir", "madam", "you", "so", "a", "in",
              "for", "the", "regards", "wishes", "customer", "service", "thanks", "and", "to", "from", "i",
              # words that start a sentence after "Hey!" or "Thanks," ("Hey! Can you ...")
              "can", "could", "would", "will", "my", "world", "please", "what", "how", "why", "is", "are", "do",
              "does", "did", "yes", "no", "ok", "okay", "good", "great", "we", "it", "this", "that", "just"}


_PHONE_CUES = re.compile(r"\b(?:call|phone|tel|telephone|mobile|cell|fax|reach|ring|whatsapp|sms|text me|number|"
                         r"telefon|handy|mobil|rufnummer|t[ée]l[ée]phone|portable|appel(?:ez)?)\b\.?", re.IGNORECASE)
_CARD_CUES = re.compile(r"\b(?:card|visa|mastercard|amex|maestro|credit|debit|karte|kreditkarte|carte|cc)\b",
                        re.IGNORECASE)
# Words before a number that make it an identifier, not a phone or a card.
_ID_CUES = re.compile(r"\b(?:id|order|invoice|ticket|tracking|build|version|release|isbn|part|serial|sku|unix|"
                      r"timestamp|checksum|hash|account|iban|ref|reference)\b[\s.:#-]*(?:no\.?|number|is)?\s*$",
                      re.IGNORECASE)
_ARITHMETIC = re.compile(r"[=+*×÷<>]\s*$")
_DECIMAL = re.compile(r"\d+[.,]\d+")                       # 0.3571428571, 48.137154, 20240305.1412
_VERSION = re.compile(r"\d+(?:\.\d+)+(?:-[\w.]+)?")        # 6.5.0-1027, 1.2.840.113549
_GROUPED_CARD = re.compile(r"\d{4}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,3})?|\d{4}[ -]\d{6}[ -]\d{4,5}")
# Card networks' number prefixes (IIN) and lengths: Visa, Mastercard, Amex, Discover, JCB, Diners, Maestro.
_CARD_NETWORKS = re.compile(r"4\d{12}(?:\d{3}){0,2}|5[1-5]\d{14}|2[2-7]\d{14}|3[47]\d{13}|6(?:011|5\d\d)\d{12,15}|"
                            r"35\d{14,17}|3(?:0[0-5]|[68]\d)\d{11,16}|(?:5[06-9]|6\d)\d{10,17}")
DEFAULT_MIN_SCORE = 0.5


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int
    value: str
    score: float = 1.0     # checked formats (email, IBAN, IP) are certain; numbers and names are scored

    def masked(self) -> str:
        return f"{self.value[:1]}***{self.value[-1:]}" if len(self.value) > 4 else "***"


def masked_context(text: str, findings: list[Finding], target: Finding, width: int = 30) -> str:
    """The words around `target` with it and every other finding in the text masked: what a reviewer
    needs to judge a finding, without the personal data itself."""
    pieces, cursor, start, end = [], 0, 0, 0
    for finding in sorted(findings, key=lambda f: f.start):
        pieces.append(text[cursor:finding.start])
        if finding == target:
            start = sum(map(len, pieces))
        pieces.append(f"[{finding.kind}: {finding.masked()}]")
        if finding == target:
            end = sum(map(len, pieces))
        cursor = finding.end
    masked = "".join(pieces) + text[cursor:]
    return f"{'…' if start > width else ''}{masked[max(0, start - width):end + width]}" \
           f"{'…' if end + width < len(masked) else ''}"


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
                 first_names_file: Path = FIRST_NAMES_FILE, min_score: dict[str, float] | None = None):
        self.detectors, self.phone_regions = detectors, phone_regions
        self.min_score = {kind: DEFAULT_MIN_SCORE for kind in DETECTORS} | (min_score or {})
        self.first_names = _first_names(str(Path(first_names_file).resolve()))
        self.find = lru_cache(maxsize=8192)(self._find)

    @classmethod
    def of(cls, settings) -> PiiScanner:
        """The scanner params.yaml's data.pii configures."""
        return cls(tuple(settings.detectors), tuple(settings.phone_regions), min_score=dict(settings.min_score))

    def _find(self, text: str) -> tuple[Finding, ...]:
        """Non-overlapping findings in text order; the checked, more specific detectors win overlaps."""
        detectors = self.detectors
        findings: list[Finding] = []

        def add(kind: str, start: int, end: int, score: float = 1.0) -> None:
            if score >= self.min_score[kind] and not any(f.start < end and start < f.end for f in findings):
                findings.append(Finding(kind, start, end, text[start:end], round(score, 2)))

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
                add("credit_card", *match.span(), card_score(text, match.start(), match.end()))
        if "ip_address" in detectors and (has_digit or ":" in text):
            for pattern in (_IPV4, _IPV6):
                for match in pattern.finditer(text):
                    if _is_ip(match.group()):
                        add("ip_address", *match.span())
        if "phone" in detectors and has_digit:
            for match in _PHONE.finditer(text):
                add("phone", *match.span(), phone_score(text, match.start(), match.end(), self.phone_regions))
        if "name" in detectors:
            position = 0
            while match := _NAME_CUES.search(text, position):
                if match.group(1).split()[0].lower() in _NOT_NAMES:
                    position = match.start(1)    # "Thanks. Regards, Anna": the cue word may be the next cue
                    continue
                add("name", *match.span(1), 0.9)
                position = match.end()
            words = list(_CAPITALISED.finditer(text))
            for first, last in zip(words, words[1:]):
                if (first.group() in self.first_names and text[first.end():last.start()].isspace()
                        and last.group().lower() not in _NOT_NAMES):
                    add("name", first.start(), last.end(), 0.6)
        return tuple(sorted(findings, key=lambda f: f.start))


def phone_score(text: str, start: int, end: int, regions: tuple[str, ...]) -> float:
    """How likely the digits at text[start:end] are a phone number: 0 for what a number in maths,
    a date, a version or an id looks like; then validity, form and the words before it."""
    candidate = text[start:end]
    number = re.split(r"\s*(?:x|ext\.?|#)\s*(?=\d+$)", candidate, maxsplit=1)[0]   # an extension is not dialled
    before, after = text[max(0, start - 30):start], text[end:end + 2]
    if (_DECIMAL.fullmatch(number) or _VERSION.fullmatch(number) and min(map(len, number.split("."))) < 3
            or before.rstrip().endswith(("/", "=", "#", "?", "&")) or after.startswith(("/", ":"))
            or _ARITHMETIC.search(before) or re.match(r"\s*[=+*×÷<>]", text[end:end + 3])
            or _ID_CUES.search(before)):
        return 0.0
    validity = _phone_validity(number, regions)
    if not validity:
        return 0.0
    score = 0.6 if validity == "valid" else 0.3
    if number.lstrip().startswith(("+", "00", "(")):
        score += 0.2
    score += 0.1 if re.search(r"\d[ ().-]+\d", number) else -0.2   # grouped as people write numbers, or a bare run
    if _PHONE_CUES.search(before):
        score += 0.3
    if _CARD_CUES.search(before):
        score -= 0.5
    return max(0.0, min(1.0, score))


def card_score(text: str, start: int, end: int) -> float:
    """How likely a Luhn-valid run of 12 to 19 digits is a payment card: its grouping and the words
    before it; 12 digits (some Maestro cards) only with a card word before them."""
    candidate = text[start:end]
    digits = re.sub(r"\D", "", candidate)
    before = text[max(0, start - 40):start]
    cue = _CARD_CUES.search(before) is not None
    if not luhn_valid(digits) or (len(digits) < 13 and not cue) or _ID_CUES.search(before):
        return 0.0
    score = 0.3 + (0.3 if _GROUPED_CARD.fullmatch(candidate) else 0.0) + (0.4 if cue else 0.0) \
        + (0.25 if _CARD_NETWORKS.fullmatch(digits) else 0.0)
    if _PHONE_CUES.search(before) and not cue:
        score -= 0.4
    return max(0.0, min(1.0, score))


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


def _phone_validity(candidate: str, regions: tuple[str, ...]) -> str | None:
    """"valid" (a number libphonenumber knows is in service), "possible" (the right length for its
    country: fictional ranges, new ranges), or None."""
    import phonenumbers

    digits = re.sub(r"\D", "", candidate)
    if not 7 <= len(digits) <= 15 or re.fullmatch(r"\d{1,4}([./-])\d{1,2}\1\d{1,4}", candidate.strip()):
        return None  # too short/long for E.164, or a date
    international = candidate.lstrip("(").startswith(("+", "00"))
    possible = False
    for region in (None,) if international else regions:
        try:
            number = phonenumbers.parse(candidate.replace("00", "+", 1) if candidate.startswith("00") else candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return "valid"
        possible = possible or phonenumbers.is_possible_number(number)
    return "possible" if possible else None


@lru_cache(maxsize=4)
def _first_names(path: str) -> frozenset[str]:
    if not Path(path).is_file():
        return frozenset()
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))
