"""The validate stage's first pass: every record checked on its own, chunk by chunk, keeping only
numbers and hashes of it (never its text) for the checks that need the whole file.

Per record it keeps: its line, 128 bits of its content hash (exact duplicates), the split its own
content would take, its rendered length in tokens, the Great Expectations columns, where personal
data sits in it (field, kind, span), its MinHash signature (near duplicates) and its n-gram hits
on the evaluation suites (decontamination). Personal data is redacted (in memory) before the hashes
and words are taken, as the splits will be written, so dedup and decontamination compare what
training will see.
"""

from __future__ import annotations

import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from toolkit.scoring.rewards import build_rewards, reference_problem
from toolkit.config import Params
from toolkit.data import dedup, pii, tool_calls
from toolkit.data.decontamination import OverlapIndex, text_pairs
from toolkit.data.expectations import DerivedColumns
from toolkit.data.formats import Record, source_field
from toolkit.data.records import Problem
from toolkit.data.splits import SPLITS, assign_split
from toolkit.data.tokens import count_tokens
from toolkit.reports import ToolCallSection

MAX_EXAMPLES = 20

Span = tuple[str, str, int, int]      # (canonical field, kind of personal data, start, end)


@dataclass
class RecordFacts:
    """What the first pass keeps of the valid records, numbered 0.. in file order."""
    lines: list[int] = field(default_factory=list)
    digests: list[np.ndarray] = field(default_factory=list)      # content hashes (n x 2 uint64), per chunk
    own_split: list[np.ndarray] = field(default_factory=list)    # index into SPLITS, per chunk
    rendered: list[np.ndarray] = field(default_factory=list)     # tokens of the longest rendering, per chunk
    longest_field: list[str] = field(default_factory=list)        # canonical field of the longest turn
    empty_field: dict[int, str] = field(default_factory=dict)     # line -> first empty text's field
    columns: DerivedColumns = field(default_factory=DerivedColumns)
    pii: dict[int, list[Span]] = field(default_factory=dict)     # line -> where its personal data is
    signatures: list[np.ndarray] = field(default_factory=list)    # MinHash, one array per chunk
    empty: list[np.ndarray] = field(default_factory=list)         # no words to compare, per chunk
    problems: list[Problem] = field(default_factory=list)         # render errors and invalid tool calls
    tool_calls: ToolCallSection = field(default_factory=ToolCallSection)
    chat_template_sha256: str | None = None

    def __len__(self) -> int:
        return len(self.lines)

    def line_array(self) -> np.ndarray:
        return np.asarray(self.lines, dtype=np.int64)

    def column(self, name: str) -> np.ndarray:
        return np.concatenate(getattr(self, name))

    def take_signatures(self, numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(signatures, empty) of the given record numbers (ascending), gathered chunk by chunk; the
        signatures are handed over, not copied (they are the largest thing the stage holds)."""
        rows, empty, start = [], [], 0
        num_perm = self.signatures[0].shape[1] if self.signatures else 1
        while self.signatures:
            signatures, blank = self.signatures.pop(0), self.empty.pop(0)
            end = start + len(signatures)
            local = numbers[(numbers >= start) & (numbers < end)] - start
            rows.append(signatures[local])
            empty.append(blank[local])
            start = end
        return (np.concatenate(rows) if rows else np.zeros((0, num_perm), dtype=np.uint64),
                np.concatenate(empty) if empty else np.zeros(0, dtype=bool))


class FirstPass:
    def __init__(self, params: Params, tokenizer, tokenizer_source: str, suite_indexes: list[OverlapIndex], phases):
        self.params, self.tokenizer, self.tokenizer_source = params, tokenizer, tokenizer_source
        self.suite_indexes, self.phases = suite_indexes, phases
        self.scanner = pii.PiiScanner.of(params.data.pii)
        # A GRPO run's rewards score each record's reference: a record they cannot score is a problem here.
        self.rewards = build_rewards(params.train.grpo) if params.train.method == "grpo" else None
        self.facts = RecordFacts()
        self._declared: set[str] = set()
        self._reasons: Counter = Counter()
        self._strings: dict[str, str] = {}

    def add(self, records: list[Record], layout: str) -> None:
        facts, params, path = self.facts, self.params, self.params.data.path
        first_number = len(facts)
        with self.phases.timed("tokens"):
            counts = count_tokens(records, self.tokenizer, self.tokenizer_source, params.train.max_length)
        facts.chat_template_sha256 = counts.chat_template_sha256
        for line, message in counts.render_errors.items():
            facts.problems.append(Problem(path, line, source_field(layout, "messages"), message))
        with self.phases.timed("expectations"):
            self._check_tool_calls(records, path)
            if self.rewards is not None:
                for record in records:
                    problem = reference_problem(record.as_row(), self.rewards)
                    if problem:
                        facts.problems.append(Problem(path, record.line, source_field(layout, problem[0]), problem[1]))
            facts.rendered.append(np.array([counts.rendered.get(r.line, 0) for r in records], dtype=np.int32))
            for record in records:
                facts.lines.append(record.line)
                longest = counts.longest_field.get(record.line, "")
                facts.longest_field.append(self._strings.setdefault(longest, longest))
                empty = next((name for name, text in record.texts() if not text.strip()), None)
                if empty is not None:
                    facts.empty_field[record.line] = empty
                facts.columns.add(record, counts.longest_turn.get(record.line, 0))
        with self.phases.timed("pii"):
            records = self._scan_pii(records)
        with self.phases.timed("dedup"):
            cfg = params.data
            keys = [record.content_key() for record in records]
            facts.digests.append(np.array([dedup.content_digest(key) for key in keys], dtype=np.uint64).reshape(-1, 2))
            facts.own_split.append(np.array([SPLITS.index(assign_split(key, cfg.validation_fraction, cfg.heldout_fraction,
                                                                       params.seed)) for key in keys], dtype=np.int8))
            texts = [dedup.content_texts(r) for r in records]
            signatures, empty = dedup.minhash_signatures([[w for text in t for w in text] for t in texts],
                                                         cfg.dedup.shingle_words, cfg.dedup.num_perm, params.seed)
            facts.signatures.append(signatures)
            facts.empty.append(empty)
        with self.phases.timed("decontamination"):
            pairs = text_pairs(texts, first_number, cfg.decontamination.ngram)
            for index in self.suite_indexes:
                index.add(pairs)

    def _scan_pii(self, records: list[Record]) -> list[Record]:
        """Records where personal data is noted; with data.pii.action redact, returned redacted."""
        redact = self.params.data.pii.action == "redact"
        out = []
        for record in records:
            spans = [(where, f.kind, f.start, f.end) for where, text in record.texts() for f in self.scanner.find(text)]
            if spans:
                self.facts.pii[record.line] = spans
            out.append(redacted(record, spans) if redact and spans else record)
        return out

    def _check_tool_calls(self, records: list[Record], path: str) -> None:
        """Every call of every tool-calling record checked; a call that would fail is a problem of its line."""
        section = self.facts.tool_calls
        for record in records:
            calls = sum(len(m.get("tool_calls") or []) for m in record.messages)
            if not calls and not record.tools and not any(m["role"] == "tool" for m in record.messages):
                continue
            section.records_with_tools += 1
            section.tool_calls += calls
            self._declared |= {t["function"]["name"] for t in record.tools or []}
            for finding in tool_calls.check(record.messages, record.tools):
                where = source_field(record.layout, finding.field)
                self.facts.problems.append(Problem(path, record.line, where, finding.message))
                section.invalid_calls += 1
                self._reasons[finding.reason] += 1
                if len(section.examples) < MAX_EXAMPLES:
                    section.examples.append({"line": record.line, "field": where, "reason": finding.message})
        section.declared_tools, section.by_reason = sorted(self._declared), dict(self._reasons)


def as_written(record: Record, facts: RecordFacts, action: str) -> Record:
    """The record as the splits hold it: redacted where personal data was noted, with action redact."""
    spans = facts.pii.get(record.line)
    return redacted(record, spans) if spans and action == "redact" else record


def redacted(record: Record, spans: list[Span]) -> Record:
    """A copy with every noted piece of personal data replaced by its placeholder."""
    by_field: dict[str, list[pii.Finding]] = {}
    for where, kind, start, end in spans:
        by_field.setdefault(where, []).append(pii.Finding(kind, start, end, ""))
    texts = dict(record.texts())
    return record.replace_texts({where: pii.redact(texts[where], found) for where, found in by_field.items()})


class Phases:
    """Wall time per phase, summed over the chunks, with a progress line as each phase first starts."""

    def __init__(self, progress):
        self.progress, self.times = progress, {}

    @contextmanager
    def timed(self, name: str):
        if name not in self.times:
            self.times[name] = 0.0
            self.progress(f"validate: {name} ...")
        started = time.perf_counter()
        try:
            yield
        finally:
            self.times[name] += time.perf_counter() - started

    def each(self, name: str, items):
        """The items of an iterator, the time spent producing each counted under `name` (reading a file)."""
        items = iter(items)
        while True:
            with self.timed(name):
                item = next(items, None)
            if item is None:
                return
            yield item

    def finish(self) -> dict[str, float]:
        return {name: round(seconds, 3) for name, seconds in self.times.items()}
