"""Deterministic train / validation / held-out splits by content hash, with no duplicate across splits.

A record's split comes from a hash of its content (and the seed), so appending rows never moves
existing ones. Near duplicates (and exact ones, when kept) form a group, and the whole group takes
the split of its earliest record, so no record or near copy sits in train and held-out at once.
(An appended row that links two existing groups merges them; the later group then moves.)
"""

from __future__ import annotations

import hashlib

import numpy as np

SPLITS = ("train", "validation", "heldout")
_BUCKETS = 10_000


def assign_split(content_key: str, validation_fraction: float, heldout_fraction: float, seed: int) -> str:
    digest = hashlib.sha256(f"{seed}:{content_key}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % _BUCKETS
    if bucket < heldout_fraction * _BUCKETS:
        return "heldout"
    if bucket < (heldout_fraction + validation_fraction) * _BUCKETS:
        return "validation"
    return "train"


def groups(count: int, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Connected-component label of each of `count` items, given undirected edges first[i]-second[i]."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(first), dtype=np.int8), (first, second)), shape=(count, count))
    _, labels = connected_components(graph, directed=False)
    return labels


def group_splits(own: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each item's split (an index into SPLITS): that of the earliest item of its group (items are in
    file order); `own` is each item's split by its own content (assign_split)."""
    _, representative = np.unique(labels, return_index=True)
    split_of_group = np.empty(int(labels.max(initial=-1)) + 1, dtype=own.dtype)
    split_of_group[labels[representative]] = own[representative]
    return split_of_group[labels]
