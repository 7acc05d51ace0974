"""Decontamination: word n-gram overlap between training data and every evaluation suite.

An evaluation item is contaminated when it shares a word n-gram (13 by default, as in GPT-3 and
lm-eval's decontamination) with a training record. N-grams are taken within each text (a turn, an
answer, a string field of an item), never across two, so a question followed by an answer does not
invent a passage that appears nowhere; an item shorter than n words in all counts when it appears
whole. Suites are every JSONL file under `eval_suites/` (all string values of an item are its
texts); the held-out split is checked the same way after splitting. N-grams that are boilerplate
in the training data (in more than max(boilerplate_min_documents, boilerplate_fraction x records)
records, e.g. a form letter) are ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit.data.ngrams import NgramHasher, a_shared_ngram, overlapping, words
from toolkit.errors import ConfigError
from toolkit.reports import SuiteContamination

MAX_PAIRS_SHOWN = 20


@dataclass
class EvaluationFileWords:
    name: str
    lines: list[int]
    texts: list[list[list[str]]]  # per item, the words of each of its texts


def evaluation_files_words(root: Path) -> list[EvaluationFileWords]:
    """Every JSONL file under root (what decontamination compares the training data with), each item as
    the words of its texts; a malformed line is a configuration error. Not the evaluation suites of
    toolkit.evals.suites: any JSONL file counts here, a suite.yaml is not needed."""
    suites = []
    for path in sorted(root.rglob("*.jsonl")) if root.is_dir() else []:
        if path.name.startswith("human_spotcheck"):
            continue  # human verdicts on judged items, not evaluation items
        lines, texts = [], []
        for line_no, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):   # not splitlines: U+2028
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"invalid JSON in an evaluation suite: {exc.msg}", file=str(path), line=line_no) from None
            lines.append(line_no)
            texts.append([words(text) for text in _strings(item)])
        suites.append(EvaluationFileWords(path.as_posix(), lines, texts))
    return suites


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _pieces(items: list[list[list[str]]], n: int) -> tuple[list[list[str]], list[int]]:
    """The word lists to cut into n-grams, and the item each came from."""
    pieces, owners = [], []
    for index, texts in enumerate(items):
        if sum(len(t) for t in texts) < n:
            pieces.append([w for t in texts for w in t])
            owners.append(index)
        else:
            for text in texts:
                if len(text) >= n:
                    pieces.append(text)
                    owners.append(index)
    return pieces, owners


class OverlapChecker:
    """Indexes the training records once; checks any number of suites against them."""

    def __init__(self, train_texts: list[list[list[str]]], train_lines: list[int], n: int,
                 boilerplate_fraction: float, boilerplate_min_documents: int):
        self.n = n
        self.hasher = NgramHasher(n)
        self.train_texts, self.train_lines = train_texts, train_lines
        pieces, self.train_owner = _pieces(train_texts, n)
        self.train = self.hasher.pairs(pieces)
        self.max_documents = max(boilerplate_min_documents, int(boilerplate_fraction * len(train_texts)))
        grams, counts = self.train.document_frequency()
        self.ignored = grams[counts > self.max_documents]

    def check(self, name: str, lines: list[int], items: list[list[list[str]]]) -> tuple[SuiteContamination, set[int]]:
        """The suite's contamination, and the indexes of the training records involved."""
        pieces, owner = _pieces(items, self.n)
        if not pieces:
            return SuiteContamination(suite=name, items=len(items), contaminated_items=0, training_records=0, pairs=[]), set()
        other_hit, train_hit, examples = overlapping(self.train, self.hasher.pairs(pieces), self.ignored, MAX_PAIRS_SHOWN)
        owner, train_owner = np.asarray(owner), np.asarray(self.train_owner)
        contaminated = set(owner[other_hit].tolist())
        involved = set(train_owner[train_hit].tolist())
        pairs = sorted({(int(owner[o]), int(train_owner[t])) for o, t in examples})
        shown = [{"suite_line": lines[o], "train_line": self.train_lines[t],
                  "ngram": self._shared(items[o], self.train_texts[t])} for o, t in pairs]
        return SuiteContamination(suite=name, items=len(items), contaminated_items=len(contaminated),
                                  training_records=len(involved), pairs=shown), involved

    def _shared(self, a: list[list[str]], b: list[list[str]]) -> str:
        """A shared n-gram that is not boilerplate, for a person to see why the pair was flagged."""
        def ignored(window: list[str]) -> bool:
            return bool(np.isin(self.hasher.pairs([window]).grams, self.ignored).all())
        for text_a in a:
            for text_b in b:
                found = a_shared_ngram(text_a, text_b, self.n, ignored)
                if found:
                    return found
        return " ".join(w for t in a for w in t) if sum(map(len, a)) < self.n else ""
