"""The figures of a monitoring window, each judged against the release or a threshold.

- Suite metrics that need no reference (JSON validity, schema, regex, contains, refusal), scored with
  the evaluation stage's own metric functions, against their value on the release's held-out and
  canary tiers: a drop is significant when the Newcombe interval of the difference lies below zero.
- Feedback rates (a true flag such as `rerouted`, or `negative`: rating 1-2 of 5 or thumbs down):
  Wilson interval against the policy's threshold.
- Input drift against the release's training split: the length of the user's text (two-sample
  Kolmogorov-Smirnov test), and the share of inputs with personal data or prompt-injection patterns
  (the data stage's detectors) against the training data's share.
The statistics are scipy's and a few lines of closed-form intervals; docs/monitoring.md says why no
drift library is used.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from statistics import NormalDist

from toolkit.reports import MonitorFigure


def window_of(time: dt.datetime, window: str) -> str:
    day = time.astimezone(dt.timezone.utc).date()
    if window == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return day.isoformat()


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(1 - (1 - confidence) / 2)


def wilson(successes: float, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval of a proportion (good at 0 and 1, unlike the Wald interval)."""
    if n == 0:
        return 0.0, 1.0
    z, p = _z(confidence), successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval(k1: float, n1: int, k2: float, n2: int, confidence: float) -> tuple[float, float]:
    """Newcombe's hybrid score interval for p1 - p2 (two independent proportions)."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1, confidence)
    l2, u2 = wilson(k2, n2, confidence)
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def _figure(kind: str, name: str, window: str, n: int, value: float | None, ci_low: float | None = None,
            ci_high: float | None = None, reference: float | None = None, p_value: float | None = None,
            status: str = "ok", message: str = "") -> MonitorFigure:
    return MonitorFigure(kind=kind, name=name, window=window, n=n, value=value, ci_low=ci_low, ci_high=ci_high,
                         reference=reference, p_value=p_value, status=status, message=message)


def metric_figure(name: str, window: str, successes: float, n: int, release_value: float, release_n: int, *,
                  confidence: float, min_records: int, max_drop: float) -> MonitorFigure:
    """`successes`: the sum of the scores of `n` records."""
    if n == 0:
        return _figure("metric", name, window, 0, None, reference=release_value, status="too_few",
                      message="no record this metric applies to")
    value = successes / n
    low, high = wilson(successes, n, confidence)
    if n < min_records:
        return _figure("metric", name, window, n, value, low, high, release_value, status="too_few",
                      message=f"{n} records (< {min_records}): reported, not judged")
    d_low, d_high = difference_interval(successes, n, release_value * release_n, release_n, confidence)
    failed = d_high < 0 and release_value - value >= max_drop
    message = (f"{value:.3f} vs {release_value:.3f} at release (difference {value - release_value:+.3f}, "
               f"CI {d_low:+.3f} to {d_high:+.3f})")
    return _figure("metric", name, window, n, value, low, high, release_value,
                  status="failed" if failed else "ok", message=("significant drop: " if failed else "") + message)


def rate_figure(kind: str, name: str, window: str, flagged: int, n: int, threshold: float, *, confidence: float,
                min_records: int) -> MonitorFigure:
    """A feedback rate (`flagged` of the `n` records that carry this feedback) against its threshold:
    failed when the whole interval is above it."""
    if n == 0:
        return _figure(kind, name, window, 0, None, reference=threshold, status="too_few", message="no feedback of this kind")
    value = flagged / n
    low, high = wilson(flagged, n, confidence)
    if n < min_records:
        return _figure(kind, name, window, n, value, low, high, threshold, status="too_few",
                      message=f"{n} records (< {min_records}): reported, not judged")
    failed = low > threshold
    return _figure(kind, name, window, n, value, low, high, threshold, status="failed" if failed else "ok",
                  message=f"{value:.3f} (CI {low:.3f}-{high:.3f}) against the threshold {threshold:.3f}"
                          + ("; significantly above" if failed else ""))


def share_drift_figure(name: str, window: str, flagged: int, n: int, training_k: int, training_n: int, *,
                       confidence: float, min_records: int, max_increase: float) -> MonitorFigure:
    """A share of inputs (with PII, with injection patterns) against the training data's share."""
    training = training_k / training_n if training_n else 0.0
    if n < min_records or not training_n:
        return _figure("drift", name, window, n, flagged / n if n else None, reference=training, status="too_few",
                      message=f"{n} records (< {min_records}): reported, not judged" if training_n
                      else "the training data's share is unknown")
    value = flagged / n
    low, high = difference_interval(flagged, n, training_k, training_n, confidence)
    failed = low > 0 and value - training >= max_increase
    return _figure("drift", name, window, n, value, *wilson(flagged, n, confidence), training,
                  status="failed" if failed else "ok",
                  message=f"{value:.3f} of inputs vs {training:.3f} in the training data "
                          f"(difference CI {low:+.3f} to {high:+.3f})" + ("; significantly higher" if failed else ""))


def length_drift_figure(window: str, lengths: Counter, training_lengths: Counter, *, p_threshold: float,
                        min_records: int, min_statistic: float) -> MonitorFigure:
    """Words in the user's text (length -> records) against the training inputs: two-sample
    Kolmogorov-Smirnov test. Failed when p < `p_threshold` and the statistic (the largest gap between
    the two distributions) is at least `min_statistic`: on a million records any shift is significant."""
    from scipy.stats import ks_2samp

    n = sum(lengths.values())
    median = _median(lengths)
    reference = float(_median(training_lengths)) if training_lengths else None
    if n < min_records or not training_lengths:
        return _figure("drift", "input_words", window, n, median, reference=reference, status="too_few",
                      message=f"{n} records (< {min_records}): reported, not judged" if training_lengths
                      else "the release's training split is not available")
    result = ks_2samp(_expand(lengths), _expand(training_lengths))
    failed = result.pvalue < p_threshold and result.statistic >= min_statistic
    return _figure("drift", "input_words", window, n, float(median), reference=reference, p_value=float(result.pvalue),
                  status="failed" if failed else "ok",
                  message=f"median {median} words vs {reference:g} in training; KS statistic {result.statistic:.3f}, "
                          f"p {result.pvalue:.2g}" + ("; significantly different" if failed else ""))


def _expand(counts: Counter):
    import numpy as np

    values = sorted(counts)
    return np.repeat(np.asarray(values, dtype=np.int32), [counts[v] for v in values])


def _median(counts: Counter) -> int | None:
    """The value at position n // 2 of the sorted values (as sorted(list)[n // 2] would give)."""
    n = sum(counts.values())
    if not n:
        return None
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen > n // 2:
            return value
    return None


def feedback(fb: dict, name: str) -> tuple[bool, str] | None:
    """(flag, what it was) when the record carries this kind of feedback, else None. `negative` reads
    an explicit flag, a 1-5 rating (1-2 is negative) or thumbs up/down."""
    if isinstance(fb.get(name), bool):
        return fb[name], f"feedback {name}"
    if name != "negative":
        return None
    rating = fb.get("rating")
    if isinstance(rating, (int, float)) and not isinstance(rating, bool):
        return rating <= 2, f"rating {rating}"
    if isinstance(fb.get("thumbs"), str):
        return fb["thumbs"].lower() == "down", f"thumbs {fb['thumbs'].lower()}"
    return None


def comparison_figure(kind: str, name: str, window: str, new: tuple[float, int], old: tuple[float, int], *,
                      pairs: Counter | None, higher_is_worse: bool, confidence: float, min_records: int,
                      max_drop: float) -> MonitorFigure:
    """The new release against the previous one on the same window. `new` and `old` are (sum of scores,
    records); `pairs`, when the same requests were answered by both (shadow), counts (new score, old
    score) per request and is compared with the evaluation's paired bootstrap (its normal limit past
    10,000 pairs); otherwise Newcombe's interval for two samples. Failed when the difference is
    significant in the worse direction and at least `max_drop`."""
    if pairs is not None:
        n_pairs = sum(pairs.values())
        new = (sum(a * c for (a, _), c in pairs.items()), n_pairs)
        old = (sum(b * c for (_, b), c in pairs.items()), n_pairs)
    (k_new, n_new), (k_old, n_old) = new, old
    value = k_new / n_new if n_new else None
    reference = k_old / n_old if n_old else None
    label = f"{kind}:{name}"
    if min(n_new, n_old) < min_records:
        return MonitorFigure(kind="comparison", name=label, window=window, n=n_new, value=value, reference=reference,
                             status="too_few", paired=pairs is not None,
                             message=f"{n_new} record(s) of this release, {n_old} of the previous "
                                     f"(< {min_records} on a side): reported, not judged")
    if pairs is not None:
        low, high = _paired_interval(pairs, confidence)
    else:
        low, high = difference_interval(k_new, n_new, k_old, n_old, confidence)
    delta = value - reference
    worse = (low > 0 and delta >= max_drop) if higher_is_worse else (high < 0 and -delta >= max_drop)
    how = f"paired on {n_new} requests" if pairs is not None else "two samples"
    message = (f"{value:.3f} vs {reference:.3f} for the previous release (difference {delta:+.3f}, "
               f"CI {low:+.3f} to {high:+.3f}, {how})")
    return MonitorFigure(kind="comparison", name=label, window=window, n=n_new, value=value, reference=reference,
                         status="failed" if worse else "ok",
                         message=("significantly worse than the previous release: " if worse else "") + message,
                         delta=delta, delta_low=low, delta_high=high, paired=pairs is not None)


def _paired_interval(pairs: Counter, confidence: float) -> tuple[float, float]:
    import numpy as np

    from toolkit.evals.stats import paired_bootstrap

    keys = sorted(pairs)
    counts = [pairs[k] for k in keys]
    new = np.repeat([k[0] for k in keys], counts)
    old = np.repeat([k[1] for k in keys], counts)
    if new.size <= 10_000:
        result = paired_bootstrap(old.tolist(), new.tolist(), confidence=confidence)
        return result.ci_low, result.ci_high
    diffs = new - old
    half = _z(confidence) * diffs.std(ddof=1) / math.sqrt(diffs.size)
    return float(diffs.mean() - half), float(diffs.mean() + half)


def category_drift_figure(name: str, window: str, counts: dict[str, int], training: dict[str, int], *,
                          p_threshold: float, min_records: int, min_distance: float) -> MonitorFigure:
    """A category mix (input language, an answer's label) against the training data's: chi-square test
    of homogeneity (categories expected fewer than 5 times merged into "other"), and the total
    variation distance as the effect size. Failed when p < `p_threshold` and the distance is at least
    `min_distance`."""
    from scipy.stats import chi2_contingency

    n, n_train = sum(counts.values()), sum(training.values())
    if n < min_records or not n_train:
        return _figure("drift", name, window, n, None, status="too_few",
                       message=f"{n} records (< {min_records}): reported, not judged" if n_train
                       else "the training data's mix is not available")
    shares = {k: v / n for k, v in counts.items()}
    train_shares = {k: v / n_train for k, v in training.items()}
    categories = set(shares) | set(train_shares)
    distance = 0.5 * sum(abs(shares.get(k, 0.0) - train_shares.get(k, 0.0)) for k in categories)
    table = _merged_table(counts, training)
    p_value = float(chi2_contingency(table).pvalue) if len(table[0]) > 1 else 1.0
    failed = p_value < p_threshold and distance >= min_distance
    top = sorted(categories, key=lambda k: -max(shares.get(k, 0), train_shares.get(k, 0)))[:4]
    mix = ", ".join(f"{k} {shares.get(k, 0):.2f} ({train_shares.get(k, 0):.2f})" for k in top)
    return _figure("drift", name, window, n, distance, reference=0.0, p_value=p_value,
                   status="failed" if failed else "ok",
                   message=f"{mix} (training in brackets); total variation distance {distance:.3f}, chi-square "
                           f"p {p_value:.2g}" + ("; significantly different" if failed else ""))


def _merged_table(counts: dict[str, int], training: dict[str, int]) -> list[list[int]]:
    n, n_train = sum(counts.values()), sum(training.values())
    total = n + n_train
    keep = [k for k in sorted(set(counts) | set(training))
            if min(n, n_train) * (counts.get(k, 0) + training.get(k, 0)) / total >= 5]
    rest = [k for k in set(counts) | set(training) if k not in keep]
    rows = [[counts.get(k, 0) for k in keep], [training.get(k, 0) for k in keep]]
    if rest:
        rows[0].append(sum(counts.get(k, 0) for k in rest))
        rows[1].append(sum(training.get(k, 0) for k in rest))
    columns = [i for i in range(len(rows[0])) if rows[0][i] + rows[1][i] > 0]
    return [[row[i] for i in columns] for row in rows]
