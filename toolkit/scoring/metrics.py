"""Per-item metrics: each maps (prediction, reference, **args) to a score in [0, 1].

A suite names metrics by their registered name, or by a dotted path (`package.module:function` or
`package.module.function`) to a custom one with the same signature. Arguments come from the suite
file and may be overridden per item. Metrics marked `binary` score 0 or 1 only; the tiers run
McNemar's test on those.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from toolkit.errors import ConfigError
from toolkit.files import json_object

MetricFn = Callable[..., float]


@dataclass(frozen=True)
class Metric:
    name: str
    fn: MetricFn
    binary: bool
    needs_reference: bool

    def __call__(self, prediction: str, reference: str | None, **args: Any) -> float:
        return float(self.fn(prediction, reference, **args))


# -- built-in metrics ------------------------------------------------------------------------------

def exact_match(prediction: str, reference: str | None) -> float:
    return float(prediction.strip() == _required(reference).strip())


def _normalize(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", "", text.lower())).strip()


def normalized_exact_match(prediction: str, reference: str | None) -> float:
    return float(_normalize(prediction) == _normalize(_required(reference)))


def json_valid(prediction: str, reference: str | None = None) -> float:
    return float(json_object(prediction) is not None)


def json_schema(prediction: str, reference: str | None = None, *, schema: dict) -> float:
    """1 when the prediction is JSON that validates against the schema (draft 2020-12)."""
    try:
        value = json.loads(prediction)
    except (json.JSONDecodeError, TypeError):
        return 0.0
    return float(_schema_validator(json.dumps(schema, sort_keys=True)).is_valid(value))


@functools.lru_cache(maxsize=32)
def _schema_validator(schema_json: str):
    from jsonschema import Draft202012Validator

    schema = json.loads(schema_json)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _expected_fields(reference: str | None, metric: str) -> dict:
    expected = json_object(_required(reference))
    if not expected:
        raise ValueError(f"{metric} needs references that are non-empty JSON objects")
    return expected


def field_accuracy(prediction: str, reference: str | None) -> float:
    """Share of the reference object's fields that the prediction reproduces exactly (0 if not JSON)."""
    expected = _expected_fields(reference, "field_accuracy")
    predicted = json_object(prediction) or {}
    return sum(predicted.get(key) == value for key, value in expected.items()) / len(expected)


def _field_counts(prediction: str, reference: str | None, metric: str) -> tuple[int, int, int]:
    """(correct fields, predicted fields, expected fields); a field is correct when key and value match."""
    expected = _expected_fields(reference, metric)
    predicted = json_object(prediction) or {}
    correct = sum(1 for key, value in predicted.items() if key in expected and expected[key] == value)
    return correct, len(predicted), len(expected)


def field_precision(prediction: str, reference: str | None) -> float:
    correct, predicted, _ = _field_counts(prediction, reference, "field_precision")
    return correct / predicted if predicted else 0.0


def field_recall(prediction: str, reference: str | None) -> float:
    correct, _, expected = _field_counts(prediction, reference, "field_recall")
    return correct / expected


def field_f1(prediction: str, reference: str | None) -> float:
    correct, predicted, expected = _field_counts(prediction, reference, "field_f1")
    return 2 * correct / (predicted + expected) if correct else 0.0


def rouge_l(prediction: str, reference: str | None) -> float:
    """ROUGE-L F1 on lower-cased word tokens (longest common subsequence)."""
    hyp = re.findall(r"\w+", prediction.lower())
    ref = re.findall(r"\w+", _required(reference).lower())
    if not hyp or not ref:
        return float(hyp == ref)
    lcs = _lcs_length(hyp, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(hyp), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def _lcs_length(a: list[str], b: list[str]) -> int:
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0]
        for j, other in enumerate(b):
            current.append(previous[j] + 1 if token == other else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


# A number as people write it: sign, thousands separators, decimals, exponent ("-1,234.5", "3e-4").
_NUMBER = re.compile(r"[-+−]?(?:\d{1,3}(?:[,\u202f\u00a0]\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+−]?\.\d+")
_NUMBER_DECIMAL_COMMA = re.compile(r"[-+−]?(?:\d{1,3}(?:[.\u202f\u00a0]\d{3})+|\d+)(?:,\d+)?(?:[eE][-+]?\d+)?")


def parse_numbers(text: str, decimal_comma: bool = False) -> list[float]:
    """The numbers in a text, in order. `decimal_comma`: "1.234,5" is 1234.5 (German, French, ...
    notation); otherwise "1,234.5" is. Thousands may also be grouped by a
    no-break or narrow no-break space (not a plain one: "12 345" is two numbers)."""
    pattern = _NUMBER_DECIMAL_COMMA if decimal_comma else _NUMBER
    numbers = []
    for match in pattern.finditer(text):
        token = re.sub(r"[\u202f\u00a0]", "", match.group().replace("−", "-"))
        token = token.replace(".", "").replace(",", ".") if decimal_comma else token.replace(",", "")
        try:
            numbers.append(float(token))
        except ValueError:
            continue
    return numbers


def numeric_match(prediction: str, reference: str | None, *, abs_tol: float = 0.0, rel_tol: float = 1e-9,
                  position: str = "last", decimal_comma: bool = False) -> float:
    """1 when the prediction's answer number equals the reference's within a tolerance: |p - r| <=
    max(rel_tol * |r|, abs_tol). The answer number is the `last` (or `first`) number in each text, as
    in worked answers that end with the result; a prediction without a number scores 0."""
    if position not in ("last", "first"):
        raise ValueError(f"numeric_match: position must be 'last' or 'first', not {position!r}")
    expected = parse_numbers(_required(reference), decimal_comma)
    if not expected:
        raise ValueError("numeric_match needs references that contain a number")
    predicted = parse_numbers(prediction, decimal_comma)
    if not predicted:
        return 0.0
    pick = -1 if position == "last" else 0
    return float(math.isclose(predicted[pick], expected[pick], rel_tol=rel_tol, abs_tol=abs_tol))


def regex(prediction: str, reference: str | None = None, *, pattern: str, ignore_case: bool = False) -> float:
    """1 when the pattern matches anywhere in the prediction."""
    return float(re.search(pattern, prediction, re.IGNORECASE if ignore_case else 0) is not None)


def contains(prediction: str, reference: str | None = None, *, text: str | list[str], ignore_case: bool = True) -> float:
    """1 when the prediction contains the text (every one of them, for a list)."""
    needles = [text] if isinstance(text, str) else list(text)
    haystack = prediction.lower() if ignore_case else prediction
    return float(all((n.lower() if ignore_case else n) in haystack for n in needles))


def not_contains(prediction: str, reference: str | None = None, *, text: str | list[str], ignore_case: bool = True) -> float:
    """1 when the prediction contains none of the texts."""
    needles = [text] if isinstance(text, str) else list(text)
    haystack = prediction.lower() if ignore_case else prediction
    return float(not any((n.lower() if ignore_case else n) in haystack for n in needles))


# Phrases by which assistants decline; kept short and specific so ordinary answers do not match.
REFUSAL_PATTERNS = (
    r"\bI(?: a|')m (?:sorry|afraid),? (?:but )?I (?:can(?:no|')t|am unable to|won't)",
    r"\bI (?:can(?:no|')t|won't|am unable to|am not able to) (?:help|assist|comply|do that|provide|share)",
    r"\bI must (?:decline|refuse)",
    r"\b(?:that|this) (?:request )?(?:is|goes) against (?:my|our) (?:guidelines|policy|policies)",
    r"\bas an AI(?: language model)?, I (?:can(?:no|')t|am not able)",
)
_REFUSAL = re.compile("|".join(REFUSAL_PATTERNS), re.IGNORECASE)


def is_refusal(text: str) -> bool:
    return _REFUSAL.search(text) is not None


def refusal(prediction: str, reference: str | None = None, *, expect: str = "refuse") -> float:
    """1 when the prediction refuses and `expect` is "refuse", or answers and `expect` is "comply"."""
    if expect not in ("refuse", "comply"):
        raise ValueError(f"refusal: expect must be 'refuse' or 'comply', not {expect!r}")
    return float(is_refusal(prediction) == (expect == "refuse"))


def _required(reference: str | None) -> str:
    if reference is None:
        raise ValueError("this metric needs a reference answer")
    return reference


BUILTIN: dict[str, Metric] = {
    metric.name: metric for metric in (
        Metric("exact_match", exact_match, binary=True, needs_reference=True),
        Metric("normalized_exact_match", normalized_exact_match, binary=True, needs_reference=True),
        Metric("json_valid", json_valid, binary=True, needs_reference=False),
        Metric("json_schema", json_schema, binary=True, needs_reference=False),
        Metric("field_accuracy", field_accuracy, binary=False, needs_reference=True),
        Metric("field_precision", field_precision, binary=False, needs_reference=True),
        Metric("field_recall", field_recall, binary=False, needs_reference=True),
        Metric("field_f1", field_f1, binary=False, needs_reference=True),
        Metric("numeric_match", numeric_match, binary=True, needs_reference=True),
        Metric("rouge_l", rouge_l, binary=False, needs_reference=True),
        Metric("regex", regex, binary=True, needs_reference=False),
        Metric("contains", contains, binary=True, needs_reference=False),
        Metric("not_contains", not_contains, binary=True, needs_reference=False),
        Metric("refusal", refusal, binary=True, needs_reference=False),
    )
}


def get_metric(name: str, source: str = "params.yaml", line: int | None = None, key: str | None = None) -> Metric:
    """A built-in metric by name, or a custom one by dotted path."""
    if name in BUILTIN:
        return BUILTIN[name]
    if "." in name or ":" in name:
        return _custom_metric(name, source, line, key)
    raise ConfigError(f"unknown metric {name!r}; known: {', '.join(sorted(BUILTIN))}, "
                      "or a dotted path to a function (package.module:function)", file=source, line=line, key=key)


def _custom_metric(path: str, source: str, line: int | None, key: str | None = None) -> Metric:
    module_name, _, attribute = path.partition(":") if ":" in path else path.rpartition(".")
    # Custom metrics usually live in the project itself; the CLI's entry point does not put it on sys.path.
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        fn = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"custom metric {path!r} cannot be imported: {exc}", file=source, line=line, key=key) from None
    if not callable(fn):
        raise ConfigError(f"custom metric {path!r} is not a function", file=source, line=line, key=key)
    return Metric(path, fn, binary=bool(getattr(fn, "binary", False)),
                  needs_reference=bool(getattr(fn, "needs_reference", False)))


def check_arguments(metric: Metric, args: dict, source: str, line: int | None, partial: bool = False,
                    key: str | None = None) -> None:
    """Fails at load time, not mid-run, when a suite passes arguments a metric does not take or lacks one
    (`partial`: a suite's defaults, which its items may complete)."""
    signature = inspect.signature(metric.fn)
    try:
        signature.bind_partial("", "", **args) if partial else signature.bind("", "", **args)
    except TypeError as exc:
        raise ConfigError(f"metric {metric.name}: {exc}", file=source, line=line, key=key) from None
    if metric.fn is json_schema and "schema" in args:
        from jsonschema.exceptions import SchemaError

        try:
            _schema_validator(json.dumps(args["schema"], sort_keys=True))
        except SchemaError as exc:
            raise ConfigError(f"metric json_schema: the schema is not valid: {exc.message}",
                              file=source, line=line, key=key) from None
