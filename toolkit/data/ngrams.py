"""Hashed word n-grams of many documents at once, for decontamination and leakage-free splits.

Documents are lists of normalised words. Each is cut into overlapping n-grams (a document shorter
than n words is one n-gram of all its words) and every n-gram is hashed to 64 bits in vectorised
numpy, so 100,000 records take seconds and memory grows linearly. A word's number is a hash of the
word itself, not its place in a vocabulary, so the same n-gram hashes alike in any call: a file
processed in chunks gets the hashes it would get in one piece, and nothing grows with the vocabulary.
The result is the sorted, unique (n-gram hash, document) pairs; joins between two corpora are
sort-merges, never all-pairs loops.

"Boilerplate" n-grams, those found in more than `max_documents` documents (a shared system prompt,
a form letter), are ignored: they say nothing about whether two particular records are related.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from hashlib import blake2b

import numpy as np

_WORD = re.compile(r"\w+")
_MIX = np.uint64(0x9E3779B97F4A7C15)


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters and digits of any script); punctuation and spacing are ignored."""
    return _WORD.findall(text.lower())


@dataclass
class NgramPairs:
    grams: np.ndarray  # uint64, sorted
    docs: np.ndarray   # int64, the document each n-gram came from


class NgramHasher:
    """Hashes word n-grams; hashers with the same n and seed hash alike, whatever they saw before."""

    def __init__(self, n: int, seed: int = 0):
        self.n = n
        rng = np.random.default_rng(seed)
        self._weights = rng.integers(1, 2**63, size=n + 1, dtype=np.uint64) | np.uint64(1)

    def pairs(self, documents: list[list[str]]) -> NgramPairs:
        lengths = np.fromiter((len(d) for d in documents), dtype=np.int64, count=len(documents))
        stream = word_numbers(documents, int(lengths.sum()))
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
        doc_of_position = np.repeat(np.arange(len(documents)), lengths)
        with np.errstate(over="ignore"):
            long_docs = lengths >= self.n
            window_hash = np.zeros(len(stream), dtype=np.uint64)
            for k in range(min(self.n, len(stream))):   # a corpus shorter than n words in all has no full window
                window_hash[: len(stream) - k] += stream[k:] * self._weights[k]
            end_of_doc = np.repeat(starts + lengths, lengths)
            valid = (np.arange(len(stream)) + self.n <= end_of_doc) & long_docs[doc_of_position]
            grams, docs = [window_hash[valid]], [doc_of_position[valid]]
            short = np.flatnonzero((lengths > 0) & ~long_docs)
            if len(short):
                grams.append(np.array([self._whole(stream[starts[d]:starts[d] + lengths[d]]) for d in short], dtype=np.uint64))
                docs.append(short)
            grams = _mix(np.concatenate(grams))
        docs = np.concatenate(docs).astype(np.int64)
        order = np.lexsort((docs, grams))
        grams, docs = grams[order], docs[order]
        keep = np.ones(len(grams), dtype=bool)
        keep[1:] = (grams[1:] != grams[:-1]) | (docs[1:] != docs[:-1])
        return NgramPairs(grams[keep], docs[keep])

    def _whole(self, ids: np.ndarray) -> np.uint64:
        with np.errstate(over="ignore"):
            return np.uint64((ids * self._weights[: len(ids)]).sum(dtype=np.uint64) + np.uint64(len(ids)) * self._weights[-1])


def word_numbers(documents: list[list[str]], count: int) -> np.ndarray:
    """Each word of the documents, in order, as a 64-bit hash of the word (odd, so never 0): each
    distinct word of the call is hashed once."""
    seen: dict[str, int] = {}
    positions = np.fromiter((seen.setdefault(w, len(seen)) for d in documents for w in d), dtype=np.int64, count=count)
    numbers = np.fromiter((int.from_bytes(blake2b(w.encode(), digest_size=8).digest(), "little") for w in seen),
                          dtype=np.uint64, count=len(seen))
    return numbers[positions] | np.uint64(1)


def splitmix64(values: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser, element-wise: a fast, well-mixing 64-bit hash of 64-bit integers."""
    with np.errstate(over="ignore"):
        values = values ^ (values >> np.uint64(30))
        values = values * np.uint64(0xBF58476D1CE4E5B9)
        values = values ^ (values >> np.uint64(27))
        values = values * np.uint64(0x94D049BB133111EB)
        return values ^ (values >> np.uint64(31))


def _mix(values: np.ndarray) -> np.ndarray:
    return splitmix64(values) ^ _MIX


def a_shared_ngram(a: list[str], b: list[str], n: int, ignored=lambda window: False) -> str:
    """One n-gram the two word lists share (not an ignored one), for showing a flagged pair to a person."""
    if len(a) < n or len(b) < n:
        return ""
    seen = {tuple(b[i:i + n]) for i in range(len(b) - n + 1)}
    for i in range(len(a) - n + 1):
        window = a[i:i + n]
        if tuple(window) in seen and not ignored(window):
            return " ".join(window)
    return ""
