"""Deterministic train / validation / held-out splits by content hash.

A record's split depends only on its own content, so appending rows never moves existing ones,
and exact duplicates always land in the same split (they cannot leak from train into held-out).
"""

from __future__ import annotations

import hashlib
import json

SPLITS = ("train", "validation", "heldout")
_BUCKETS = 10_000


def content_hash(messages: list[dict]) -> str:
    canonical = json.dumps(messages, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def assign_split(messages: list[dict], validation_fraction: float, heldout_fraction: float, seed: int) -> str:
    digest = hashlib.sha256(f"{seed}:{content_hash(messages)}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % _BUCKETS
    if bucket < heldout_fraction * _BUCKETS:
        return "heldout"
    if bucket < (heldout_fraction + validation_fraction) * _BUCKETS:
        return "validation"
    return "train"
