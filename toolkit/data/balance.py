"""Class balance for classification-style tasks.

A task is classification-style when its answers are short labels: either every answer is a JSON
object (each top-level field with at most `max_classes` distinct scalar values is a label, as in
{"category": ..., "priority": ...}), or the answers themselves take at most `max_classes` values.
For KTO data the desirable/undesirable label is always reported.
"""

from __future__ import annotations

from collections import Counter

from toolkit.data.formats import Record
from toolkit.files import json_object
from toolkit.reports import BalanceSection, LabelBalance


def class_balance(records: list[Record], max_ratio: float, max_classes: int) -> BalanceSection:
    labels: dict[str, Counter] = {}
    answers = [_answer(r) for r in records]
    if records and records[0].kind == "kto":
        labels["label"] = Counter(str(r.label).lower() for r in records)
    parsed = [json_object(a) for a in answers]
    if answers and all(p is not None for p in parsed):
        fields = Counter(key for p in parsed for key in p)
        for key, seen in fields.items():
            values = Counter(_scalar(p.get(key)) for p in parsed if key in p)
            if seen == len(parsed) and None not in values and 2 <= len(values) <= max_classes:
                labels[key] = values
    elif answers:
        values = Counter(a.strip() for a in answers)
        if 2 <= len(values) <= max_classes and len(values) < len(answers):
            labels["answer"] = values
    section = {}
    for name, counts in labels.items():
        ratio = max(counts.values()) / min(counts.values())
        section[name] = LabelBalance(counts=dict(counts.most_common()), ratio=round(ratio, 3), imbalanced=ratio > max_ratio)
    return BalanceSection(applicable=bool(section), max_ratio=max_ratio, labels=section,
                          imbalanced=any(b.imbalanced for b in section.values()))


def _answer(record: Record) -> str:
    if record.kind == "sft":
        return record.messages[-1]["content"]
    return record.chosen if record.kind == "preference" else record.completion


def _scalar(value) -> str | None:
    if isinstance(value, (str, int, float, bool)):
        return str(value)
    return None
