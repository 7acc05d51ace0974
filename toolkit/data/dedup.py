"""Exact and near duplicates.

Exact: the same canonical record (after normalization, so a chat record and the same conversation
in ShareGPT form are duplicates), compared by 128 bits of its SHA-256. Near: MinHash signatures of word shingles of the non-system text
(the system prompt is left out because a shared one would make every record look alike),
candidate pairs from LSH banding, each confirmed by the signatures' estimate of Jaccard similarity.

MinHash and banding are vectorised numpy over all records at once (shingle hashes come from
toolkit.data.ngrams). datasketch, the usual library, hashes shingle by shingle in Python and took
about 20 s per 100,000 records on the 2-core CI machine; this takes a few seconds. The band layout
is chosen the way datasketch chooses it, but weighted 95:5 towards recall: every candidate is
verified against the threshold anyway, so a missed pair costs more than an extra candidate.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from toolkit.data.formats import Record
from toolkit.data.ngrams import NgramHasher, splitmix64, words

_ALL_PAIRS_BUCKET = 50  # larger LSH buckets are linked as a star and a chain, not all k^2 pairs


@dataclass(frozen=True)
class NearPair:
    first: int   # index into the record list; first < second
    second: int
    jaccard: float


def content_texts(record: Record) -> list[list[str]]:
    """The words dedup and decontamination compare, per text: every turn but the system prompt, and the answers."""
    system = {f"messages[{i}].content" for i, m in enumerate(record.messages) if m["role"] == "system"}
    return [words(text) for name, text in record.texts() if name not in system]


def content_words(record: Record) -> list[str]:
    return [w for text in content_texts(record) for w in text]


def minhash_signatures(documents: list[list[str]], shingle_words: int, num_perm: int,
                       seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(documents x num_perm) uint64 MinHash signatures, and which documents are empty (they match nothing)."""
    pairs = NgramHasher(shingle_words, seed).pairs(documents)
    order = np.argsort(pairs.docs, kind="stable")
    grams, docs = pairs.grams[order], pairs.docs[order]
    seeds = np.random.default_rng(seed).integers(1, 2**63, size=num_perm, dtype=np.uint64)
    signatures = np.full((len(documents), num_perm), np.iinfo(np.uint64).max, dtype=np.uint64)
    chunk = max(1, 4_000_000 // num_perm)
    start = 0
    while start < len(grams):
        # cut chunks at document boundaries so each document's minimum is taken in one piece
        end = min(len(grams), start + chunk)
        if end < len(grams):
            end = max(start + 1, int(np.searchsorted(docs, docs[end], side="left")))
        block_docs = docs[start:end]
        hashed = splitmix64(grams[start:end, None] ^ seeds[None, :])
        firsts = np.flatnonzero(np.r_[True, block_docs[1:] != block_docs[:-1]])
        signatures[block_docs[firsts]] = np.minimum.reduceat(hashed, firsts, axis=0)
        start = end
    empty = np.ones(len(documents), dtype=bool)
    empty[docs] = False
    return signatures, empty


def near_duplicates(documents: list[list[str]], threshold: float, shingle_words: int, num_perm: int,
                    seed: int) -> list[NearPair]:
    """Pairs whose estimated Jaccard similarity of word shingles is at least `threshold`."""
    if len(documents) < 2:
        return []
    return near_pairs(*minhash_signatures(documents, shingle_words, num_perm, seed), threshold)


def near_pairs(signatures: np.ndarray, empty: np.ndarray, threshold: float) -> list[NearPair]:
    """Near-duplicate pairs among documents given by their MinHash signatures (rows, in order)."""
    if len(signatures) < 2:
        return []
    bands, rows = optimal_bands(threshold, signatures.shape[1])
    candidates = []
    for band in range(bands):
        block = signatures[:, band * rows:(band + 1) * rows]
        keys = splitmix64(np.bitwise_xor.reduce(splitmix64(block + np.arange(1, rows + 1, dtype=np.uint64)), axis=1))
        keys[empty] = np.arange(int(empty.sum()), dtype=np.uint64)  # unique keys: never a candidate
        candidates.append(_bucket_pairs(keys))
    pairs = np.unique(np.concatenate(candidates), axis=0) if candidates else np.zeros((0, 2), dtype=np.int64)
    found = []
    for start in range(0, len(pairs), 200_000):
        block = pairs[start:start + 200_000]
        similarity = (signatures[block[:, 0]] == signatures[block[:, 1]]).mean(axis=1)
        for (a, b), s in zip(block[similarity >= threshold], similarity[similarity >= threshold]):
            found.append(NearPair(int(a), int(b), round(float(s), 3)))
    return found


def first_occurrences(keys: np.ndarray) -> np.ndarray:
    """For rows of content digests (n x 2 uint64, in file order): the index of each row's first equal row."""
    if not len(keys):
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((np.arange(len(keys)), keys[:, 1], keys[:, 0]))
    ordered = keys[order]
    new_group = np.r_[True, (ordered[1:] != ordered[:-1]).any(axis=1)]
    first_of_group = order[np.flatnonzero(new_group)]
    first = np.empty(len(keys), dtype=np.int64)
    first[order] = first_of_group[np.cumsum(new_group) - 1]
    return first


def content_digest(content_key: str) -> tuple[int, int]:
    """128 bits of the SHA-256 of a record's canonical content (Record.content_key): what exact duplicates share."""
    digest = hashlib.sha256(content_key.encode()).digest()
    return int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:16], "little")


def _bucket_pairs(keys: np.ndarray) -> np.ndarray:
    """(first, second) index pairs of documents sharing a key, first < second (vectorised per offset)."""
    indices = np.arange(len(keys))
    order = np.lexsort((indices, keys))
    members, sorted_keys = indices[order], keys[order]
    new_bucket = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
    bucket = np.cumsum(new_bucket) - 1
    starts = np.flatnonzero(new_bucket)
    size = np.diff(np.r_[starts, len(keys)])[bucket]
    out = []
    for offset in range(1, min(_ALL_PAIRS_BUCKET, int(size.max(initial=1)))):
        same = bucket[:-offset] == bucket[offset:]
        if offset > 1:
            same &= size[:-offset] <= _ALL_PAIRS_BUCKET  # large buckets: neighbours (offset 1) and the star below
        out.append(np.stack([members[:-offset][same], members[offset:][same]], axis=1))
    large = (size > _ALL_PAIRS_BUCKET) & ~new_bucket
    out.append(np.stack([members[starts[bucket[large]]], members[large]], axis=1))
    return np.concatenate(out).astype(np.int64)


@lru_cache(maxsize=32)
def optimal_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) minimising 0.05 x false-positive + 0.95 x false-negative probability mass around threshold."""
    grid_low, grid_high = np.linspace(0, threshold, 200), np.linspace(threshold, 1, 200)
    best, best_error = (1, num_perm), float("inf")
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            false_positive = np.trapezoid(1 - (1 - grid_low ** rows) ** bands, grid_low)
            false_negative = np.trapezoid((1 - grid_high ** rows) ** bands, grid_high)
            error = 0.05 * false_positive + 0.95 * false_negative
            if error < best_error:
                best, best_error = (bands, rows), error
    return best
