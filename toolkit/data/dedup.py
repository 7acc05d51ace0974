"""Exact and near duplicates.

Exact: the same canonical record (after normalization, so a chat record and the same conversation
in ShareGPT form are duplicates). Near: MinHash LSH (datasketch) over word shingles of the
non-system text, confirmed by the MinHash estimate of Jaccard similarity; the system prompt is
left out because a shared one would make every record look alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.data.formats import Record
from toolkit.data.ngrams import words


@dataclass(frozen=True)
class NearPair:
    first: int   # index into the record list; first < second
    second: int
    jaccard: float


def content_texts(record: Record) -> list[list[str]]:
    """The words dedup and decontamination compare, per text: every turn but the system prompt, and the answers."""
    texts = [m["content"] for m in record.messages if m["role"] != "system"]
    texts += [t for t in (record.chosen, record.rejected, record.completion) if t is not None]
    return [words(text) for text in texts]


def content_words(record: Record) -> list[str]:
    return [w for text in content_texts(record) for w in text]


def exact_duplicates(records: list[Record]) -> dict[int, int]:
    """index of each repeated record -> index of its first occurrence."""
    first_seen: dict[str, int] = {}
    repeats = {}
    for index, record in enumerate(records):
        key = record.content_key()
        if key in first_seen:
            repeats[index] = first_seen[key]
        else:
            first_seen[key] = index
    return repeats


def near_duplicates(documents: list[list[str]], threshold: float, shingle_words: int, num_perm: int,
                    seed: int) -> list[NearPair]:
    """Pairs whose estimated Jaccard similarity of word shingles is at least `threshold`."""
    from datasketch import MinHash, MinHashLSH

    shingles = [_shingles(doc, shingle_words) for doc in documents]
    signatures = list(MinHash.bulk(shingles, num_perm=num_perm, seed=seed))
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    with lsh.insertion_session() as session:
        for index, (signature, doc) in enumerate(zip(signatures, shingles)):
            if doc:
                session.insert(index, signature, check_duplication=False)
    pairs = []
    for index, (signature, doc) in enumerate(zip(signatures, shingles)):
        if not doc:
            continue
        for other in lsh.query(signature):
            if other > index:
                jaccard = signature.jaccard(signatures[other])
                if jaccard >= threshold:
                    pairs.append(NearPair(index, other, round(float(jaccard), 3)))
    return sorted(pairs, key=lambda p: (p.first, p.second))


def _shingles(doc: list[str], size: int) -> list[bytes]:
    if len(doc) <= size:
        return [" ".join(doc).encode()] if doc else []
    return [" ".join(doc[i:i + size]).encode() for i in range(len(doc) - size + 1)]
