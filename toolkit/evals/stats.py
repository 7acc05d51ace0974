"""Paired statistics for base-vs-adapter comparisons on the same items."""

from __future__ import annotations

import numpy as np

from toolkit.reports import MetricDelta, SeedDelta


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


def across_seeds(base_scores: list[float], seed_scores: dict[int, list[float]], samples: int, confidence: float,
                 seed: int, lower_is_better: bool = False) -> SeedDelta:
    """The delta mean(adapter - base) of several training seeds' adapters on the same items.

    Two-level bootstrap: each replicate draws the seeds with replacement, then the items with
    replacement (one item draw shared by the drawn seeds: they answered the same items), and takes
    the mean delta. With few seeds the percentile interval of those replicates is too narrow (with
    3 seeds only 27 seed draws exist, and the 2.5 % tail falls inside the draws of the worst seed
    alone), so the interval is the replicates' standard error times Student's t on seeds - 1
    degrees of freedom, the usual correction for few clusters. With one seed it is the plain
    percentile interval over items (the single run's own CI)."""
    from scipy.stats import t as student_t

    base = np.asarray(base_scores, dtype=float)
    seeds = list(seed_scores)
    if not seeds or base.size == 0 or any(len(seed_scores[s]) != base.size for s in seeds):
        raise ValueError("every seed needs a score on each of the same, non-zero number of items")
    diffs = np.asarray([seed_scores[s] for s in seeds], dtype=float) - base      # seeds x items
    per_seed = diffs.mean(axis=1)
    k, n = diffs.shape
    rng = np.random.default_rng(seed)
    replicates = np.empty(samples)
    for start in range(0, samples, 256):        # chunks: samples x items at once can be large
        count = min(256, samples - start)
        seed_weights = rng.multinomial(k, np.full(k, 1 / k), size=count) / k      # count x seeds
        item_weights = rng.multinomial(n, np.full(n, 1 / n), size=count) / n      # count x items
        replicates[start:start + count] = ((seed_weights @ diffs) * item_weights).sum(axis=1)
    mean = float(per_seed.mean())
    tail = (1 - confidence) / 2
    if k == 1:
        low, high = (float(v) for v in np.quantile(replicates, [tail, 1 - tail]))
    else:
        half = float(student_t.ppf(1 - tail, k - 1) * replicates.std(ddof=1))
        low, high = mean - half, mean + half
    worst, best = (per_seed.max(), per_seed.min()) if lower_is_better else (per_seed.min(), per_seed.max())
    return SeedDelta(per_seed={str(s): float(d) for s, d in zip(seeds, per_seed)}, mean=mean,
                     worst=float(worst), best=float(best), spread=float(per_seed.max() - per_seed.min()),
                     ci_low=low, ci_high=high, confidence=confidence, n=n)


INTERVAL_METHOD = ("two-level bootstrap (seeds, then items): the replicates' standard error times Student's t "
                   "on seeds - 1 degrees of freedom; one seed: the percentile interval over items")
