"""Paired statistics for base-vs-adapter comparisons on the same items."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PairedDelta:
    base: float
    adapter: float
    delta: float
    ci_low: float
    ci_high: float
    confidence: float


def paired_bootstrap(base_scores: list[float], adapter_scores: list[float], samples: int = 2000,
                     confidence: float = 0.95, seed: int = 0) -> PairedDelta:
    """Percentile bootstrap CI of mean(adapter - base), resampling items (pairs stay together)."""
    base = np.asarray(base_scores, dtype=float)
    adapter = np.asarray(adapter_scores, dtype=float)
    if base.shape != adapter.shape or base.size == 0:
        raise ValueError("paired scores need the same, non-zero number of items")
    diffs = adapter - base
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, diffs.size, size=(samples, diffs.size))
    means = diffs[indices].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return PairedDelta(float(base.mean()), float(adapter.mean()), float(diffs.mean()), float(low), float(high), confidence)


def mcnemar_exact(base: list[float], adapter: list[float]) -> float:
    """McNemar's exact test on paired 0/1 outcomes: a two-sided binomial test on the discordant pairs."""
    from scipy.stats import binomtest

    if len(base) != len(adapter):
        raise ValueError("McNemar's test needs paired scores of equal length")
    only_base = sum(1 for b, a in zip(base, adapter) if b >= 0.5 > a)
    only_adapter = sum(1 for b, a in zip(base, adapter) if a >= 0.5 > b)
    if only_base + only_adapter == 0:
        return 1.0
    return float(binomtest(only_adapter, only_base + only_adapter, 0.5).pvalue)
