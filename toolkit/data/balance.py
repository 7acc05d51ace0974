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
    tally = BalanceTally(max_ratio, max_classes)
    tally.add(records)
    return tally.section()


class BalanceTally:
    """Class balance counted chunk by chunk. A field (or the answer) that takes more than max_classes
    values is not a label whatever comes later, so its counts are dropped as soon as it does: memory
    stays with the labels, not with the answers."""

    def __init__(self, max_ratio: float, max_classes: int):
        self.max_ratio, self.max_classes = max_ratio, max_classes
        self.records, self.kto = 0, False
        self.kto_labels: Counter = Counter()
        self.all_json = True
        self.fields: Counter = Counter()             # records holding each top-level field
        self.values: dict[str, Counter | None] = {}  # None: not a label (too many values, or not scalar)
        self.answers: Counter | None = Counter()

    def add(self, records: list[Record]) -> None:
        if records and self.records == 0:
            self.kto = records[0].kind == "kto"
        for record in records:
            self.records += 1
            if self.kto:
                self.kto_labels[str(record.label).lower()] += 1
            answer = _answer(record)
            if self.answers is not None:
                self.answers[answer.strip()] += 1
                if len(self.answers) > self.max_classes:
                    self.answers = None
            if self.all_json:
                self._add_fields(json_object(answer))

    def _add_fields(self, parsed: dict | None) -> None:
        if parsed is None:
            self.all_json, self.fields, self.values = False, Counter(), {}
            return
        for key, value in parsed.items():
            self.fields[key] += 1
            seen = self.values.setdefault(key, Counter())
            if seen is None:
                continue
            scalar = _scalar(value)
            seen[scalar] += 1
            if scalar is None or len(seen) > self.max_classes:
                self.values[key] = None

    def section(self) -> BalanceSection:
        labels: dict[str, Counter] = {}
        if self.kto:
            labels["label"] = self.kto_labels
        if self.records and self.all_json:
            for key, seen in self.fields.items():
                values = self.values.get(key)
                if seen == self.records and values is not None and 2 <= len(values) <= self.max_classes:
                    labels[key] = values
        elif self.records and self.answers is not None:
            if 2 <= len(self.answers) <= self.max_classes and len(self.answers) < self.records:
                labels["answer"] = self.answers
        section = {}
        for name, counts in labels.items():
            ratio = max(counts.values()) / min(counts.values())
            section[name] = LabelBalance(counts=dict(counts.most_common()), ratio=round(ratio, 3),
                                         imbalanced=ratio > self.max_ratio)
        return BalanceSection(applicable=bool(section), max_ratio=self.max_ratio, labels=section,
                              imbalanced=any(b.imbalanced for b in section.values()))


def _answer(record: Record) -> str:
    if record.kind == "sft":
        return record.messages[-1]["content"]
    return record.chosen if record.kind == "preference" else record.completion


def _scalar(value) -> str | None:
    if isinstance(value, (str, int, float, bool)):
        return str(value)
    return None
