"""Per-item metrics: each maps (prediction, reference) to a score in [0, 1]."""

from __future__ import annotations

import re
from typing import Callable

from toolkit.errors import ConfigError
from toolkit.files import json_object

Metric = Callable[[str, str], float]


def exact_match(prediction: str, reference: str) -> float:
    return float(prediction.strip() == reference.strip())


def normalized_exact_match(prediction: str, reference: str) -> float:
    def norm(text: str) -> str:
        return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", "", text.lower())).strip()

    return float(norm(prediction) == norm(reference))


def json_valid(prediction: str, reference: str) -> float:
    return float(json_object(prediction) is not None)


def field_accuracy(prediction: str, reference: str) -> float:
    """Share of the reference object's fields that the prediction reproduces exactly (0 if not JSON)."""
    expected = json_object(reference)
    if not expected:
        raise ValueError("field_accuracy needs references that are non-empty JSON objects")
    predicted = json_object(prediction) or {}
    return sum(predicted.get(key) == value for key, value in expected.items()) / len(expected)


METRICS: dict[str, Metric] = {
    "exact_match": exact_match,
    "normalized_exact_match": normalized_exact_match,
    "json_valid": json_valid,
    "field_accuracy": field_accuracy,
}


def get_metric(name: str, source: str = "params.yaml") -> Metric:
    if name not in METRICS:
        raise ConfigError(f"unknown metric {name!r}; known: {', '.join(sorted(METRICS))}", file=source)
    return METRICS[name]
