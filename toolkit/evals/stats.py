"""Paired statistics for base-vs-adapter comparisons on the same items."""

from __future__ import annotations

import numpy as np

from toolkit.reports import MetricDelta


def paired_bootstrap(base_scores: list[float], adapter_scores: list[float], samples: int = 2000,
                     confidence: float = 0.95, seed: int = 0) -> MetricDelta:
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
    return MetricDelta(base=float(base.mean()), adapter=float(adapter.mean()), delta=float(diffs.mean()),
                       ci_low=float(low), ci_high=float(high), confidence=confidence, n=int(diffs.size))


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


def metric_delta(base_scores: list[float], adapter_scores: list[float], samples: int, confidence: float, seed: int,
                 binary: bool) -> MetricDelta:
    """The reported comparison of one metric, base vs adapter on the same items: the bootstrap CI of
    the paired difference, the relative delta and, for right/wrong metrics whose scores are all 0 or
    1, McNemar's exact p-value. Every tier builds its MetricDelta here."""
    paired = paired_bootstrap(base_scores, adapter_scores, samples, confidence, seed)
    binary = binary and all(score in (0.0, 1.0) for score in list(base_scores) + list(adapter_scores))
    # Relative to a positive base only: for a log-likelihood (negative) the ratio means nothing.
    return paired.model_copy(update={"relative_delta": paired.delta / paired.base if paired.base > 0 else None,
                                     "p_value": mcnemar_exact(base_scores, adapter_scores) if binary else None})
