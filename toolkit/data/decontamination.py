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

from toolkit.data.ngrams import NgramHasher, NgramPairs, a_shared_ngram, words
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


@dataclass
class Overlap:
    """What an evaluation corpus shares with the training records, boilerplate n-grams left out."""
    items: int
    contaminated_items: int
    involved: np.ndarray                  # training record numbers that share a non-boilerplate n-gram
    examples: list[tuple[int, int]]       # (item, training record), the first MAX_PAIRS_SHOWN in order
    ignored: np.ndarray                   # the boilerplate n-grams (hashes)
    max_documents: int


def text_pairs(texts: list[list[list[str]]], first_record: int, n: int) -> NgramPairs:
    """The (n-gram, record number) pairs of a chunk of records (each the words of its texts) numbered
    from first_record, one per text that holds the n-gram (as document frequencies count them)."""
    pieces, owner = _pieces(texts, n)
    pairs = NgramHasher(n).pairs(pieces)
    return NgramPairs(pairs.grams, first_record + np.asarray(owner, dtype=np.int64)[pairs.docs])


class OverlapIndex:
    """The n-grams of a small corpus (an evaluation suite, the held-out split) against which the
    training records are streamed chunk by chunk. Only the training side's hits on these n-grams are
    kept, so memory grows with the overlap, not with the training data. With `cap` (the boilerplate
    limit, when the number of training records is known in advance) an n-gram seen in more records
    than that is dropped as it goes: it is boilerplate whatever comes later."""

    def __init__(self, pairs: NgramPairs, items: int, cap: int | None = None):
        """`pairs`: the corpus's (n-gram, item number) pairs (text_pairs), of `items` items in all."""
        self.items, self.cap = items, cap
        self.grams = np.unique(pairs.grams)
        self.item_gram = np.searchsorted(self.grams, pairs.grams)
        self.item_of = pairs.docs
        self.counts = np.zeros(len(self.grams), dtype=np.int64)     # training texts holding each n-gram
        self.hit_gram = np.zeros(0, dtype=np.int64)
        self.hit_record = np.zeros(0, dtype=np.int64)

    def add(self, train: NgramPairs) -> None:
        if not len(self.grams) or not len(train.grams):
            return
        where = np.minimum(np.searchsorted(self.grams, train.grams), len(self.grams) - 1)
        hit = self.grams[where] == train.grams
        self.counts += np.bincount(where[hit], minlength=len(self.grams))
        gram, record = where[hit], train.docs[hit]
        if self.cap is not None:
            gram, record = self._below_cap(np.r_[self.hit_gram, gram], np.r_[self.hit_record, record])
        else:
            gram, record = np.r_[self.hit_gram, gram], np.r_[self.hit_record, record]
        self.hit_gram, self.hit_record = gram, record

    def _below_cap(self, gram: np.ndarray, record: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keep = self.counts[gram] <= self.cap
        return gram[keep], record[keep]

    def result(self, training_records: int, boilerplate_fraction: float, boilerplate_min_documents: int,
               kept: np.ndarray | None = None) -> Overlap:
        """The overlap with the training records (only those `kept` marks, when given: records dropped
        after the pass count for nothing, boilerplate included)."""
        max_documents = max(boilerplate_min_documents, int(boilerplate_fraction * training_records))
        gram, record = self.hit_gram, self.hit_record
        counts = self.counts
        if kept is not None:
            if self.cap is not None:
                raise ValueError("an index that drops boilerplate as it goes cannot leave records out afterwards")
            gram, record = gram[kept[record]], record[kept[record]]
            counts = np.bincount(gram, minlength=len(self.grams))
        common = (counts > 0) & (counts <= max_documents)
        shared = common[gram]
        gram, record = gram[shared], record[shared]
        partner = np.full(len(self.grams), np.iinfo(np.int64).max)
        np.minimum.at(partner, gram, record)        # the first training record holding each shared n-gram
        item_hit = common[self.item_gram] if len(self.item_gram) else np.zeros(0, dtype=bool)
        pairs = np.unique(np.stack([self.item_of[item_hit], partner[self.item_gram[item_hit]]], axis=1), axis=0)
        return Overlap(items=self.items, contaminated_items=len(np.unique(self.item_of[item_hit])),
                       involved=np.unique(record), examples=[(int(a), int(b)) for a, b in pairs[:MAX_PAIRS_SHOWN]],
                       ignored=self.grams[counts > max_documents], max_documents=max_documents)


def shared_ngram(a: list[list[str]], b: list[list[str]], n: int, ignored: np.ndarray) -> str:
    """A shared n-gram that is not boilerplate, for a person to see why the pair was flagged."""
    hasher = NgramHasher(n)

    def is_ignored(window: list[str]) -> bool:
        return bool(np.isin(hasher.pairs([window]).grams, ignored).all())
    for text_a in a:
        for text_b in b:
            found = a_shared_ngram(text_a, text_b, n, is_ignored)
            if found:
                return found
    return " ".join(w for t in a for w in t) if sum(map(len, a)) < n else ""


class OverlapChecker:
    """Training records held in memory, checked against any number of suites."""

    def __init__(self, train_texts: list[list[list[str]]], train_lines: list[int], n: int,
                 boilerplate_fraction: float, boilerplate_min_documents: int):
        self.n, self.train_texts, self.train_lines = n, train_texts, train_lines
        self.train = text_pairs(train_texts, 0, n)
        self.boilerplate = (boilerplate_fraction, boilerplate_min_documents)
        self.max_documents = max(boilerplate_min_documents, int(boilerplate_fraction * len(train_texts)))

    def check(self, name: str, lines: list[int], items: list[list[list[str]]]) -> tuple[SuiteContamination, set[int]]:
        """The suite's contamination, and the indexes of the training records involved."""
        index = OverlapIndex(text_pairs(items, 0, self.n), len(items))
        index.add(self.train)
        overlap = index.result(len(self.train_texts), *self.boilerplate)
        return suite_contamination(name, lines, self.train_lines, overlap,
                                   [shared_ngram(items[o], self.train_texts[t], self.n, overlap.ignored)
                                    for o, t in overlap.examples]), set(overlap.involved.tolist())


def suite_contamination(name: str, item_lines: list[int], train_lines, overlap: Overlap,
                        ngrams: list[str]) -> SuiteContamination:
    return SuiteContamination(suite=name, items=overlap.items, contaminated_items=overlap.contaminated_items,
                              training_records=len(overlap.involved),
                              pairs=[{"suite_line": item_lines[o], "train_line": int(train_lines[t]), "ngram": ngram}
                                     for (o, t), ngram in zip(overlap.examples, ngrams)])
