"""Per-window tallies of observations: counts and sums only, so memory does not grow with the records.

A worker adds each observation of its chunk to its window and to "all", for the release being
monitored and for the previous one (`Tallies.add`); the parent merges the chunks' tallies
(`Tallies.merge`) and pairs the shadow answers of both releases to one request by `request_id`, which
may lie in different chunks. `figures` turns a window's tallies into the figures of
toolkit.monitoring.analysis.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import datetime as dt
from typing import NamedTuple

from toolkit.config import MonitorParams
from toolkit.monitoring import analysis
from toolkit.monitoring.reference import ReleaseReference
from toolkit.reports import MonitorFigure

ALL = "all"


class Observation(NamedTuple):
    """One record of the release (new) or of the previous one, as the tallies need it."""
    new: bool
    time: dt.datetime
    window: str
    request_id: str | None
    scores: tuple[float, ...]                 # in the order of the reference's metrics
    feedback: tuple[bool | None, ...]         # per feedback kind; None: no such feedback
    words: int
    pii: bool
    injection: bool
    language: str
    label: str | None
    latency_ms: float | None
    tokens: int | None


class Answer(NamedTuple):
    """What pairing needs of an answer that carries a request id."""
    request_id: str
    new: bool
    window: str
    scores: tuple[float, ...]


@dataclass
class Tally:
    """One release's records in one window."""
    metrics: int
    feedback_kinds: int
    n: int = 0
    scores: list[float] = field(default_factory=list)            # sum per metric
    feedback: list[list[int]] = field(default_factory=list)      # [flagged, carrying it] per feedback kind
    lengths: Counter = field(default_factory=Counter)
    languages: Counter = field(default_factory=Counter)
    labels: Counter = field(default_factory=Counter)
    pii: int = 0
    injection: int = 0

    def __post_init__(self) -> None:
        self.scores = [0.0] * self.metrics
        self.feedback = [[0, 0] for _ in range(self.feedback_kinds)]

    def merge(self, other: "Tally") -> None:
        self.n += other.n
        self.scores = [a + b for a, b in zip(self.scores, other.scores)]
        self.feedback = [[a + c, b + d] for (a, b), (c, d) in zip(self.feedback, other.feedback)]
        for mine, theirs in ((self.lengths, other.lengths), (self.languages, other.languages),
                             (self.labels, other.labels)):
            mine.update(theirs)
        self.pii += other.pii
        self.injection += other.injection

    def add(self, o: Observation) -> None:
        self.n += 1
        for i, score in enumerate(o.scores):
            self.scores[i] += score
        for i, flag in enumerate(o.feedback):
            if flag is not None:
                self.feedback[i][0] += flag
                self.feedback[i][1] += 1
        self.lengths[o.words] += 1
        self.languages[o.language] += 1
        if o.label is not None:
            self.labels[o.label] += 1
        self.pii += o.pii
        self.injection += o.injection


@dataclass
class Serving:
    """Latency, tokens and days of the monitored release's records."""
    latencies: Counter = field(default_factory=Counter)     # rounded to 0.1 ms -> records
    tokens: int = 0
    with_tokens: int = 0
    days: set = field(default_factory=set)
    n: int = 0

    def merge(self, other: "Serving") -> None:
        self.latencies.update(other.latencies)
        self.tokens += other.tokens
        self.with_tokens += other.with_tokens
        self.days |= other.days
        self.n += other.n

    def add(self, o: Observation) -> None:
        self.n += 1
        self.days.add(o.time.date())
        if o.latency_ms is not None:
            self.latencies[round(o.latency_ms, 1)] += 1
        if o.tokens is not None:
            self.tokens += o.tokens
            self.with_tokens += 1

    def latency_quantile(self, q: float) -> float | None:
        """The value at position int(q * n) of the sorted latencies."""
        n = sum(self.latencies.values())
        if not n:
            return None
        position, seen = min(n - 1, int(q * n)), 0
        for value in sorted(self.latencies):
            seen += self.latencies[value]
            if seen > position:
                return round(value, 1)
        return None


class Tallies:
    def __init__(self, metric_names: list[str], feedback_names: tuple[str, ...]):
        self.metric_names = metric_names
        self.feedback_names = feedback_names
        self.new: dict[str, Tally] = defaultdict(self._tally)
        self.old: dict[str, Tally] = defaultdict(self._tally)
        self.answers: list[Answer] = []              # of this chunk, for the parent to pair
        self.pairs: dict[str, list[Counter]] = defaultdict(self._pair_counters)   # window -> per metric
        self.waiting: dict[str, Answer] = {}         # shadow answers whose counterpart has not come yet
        self.serving = Serving()
        self.first: dt.datetime | None = None
        self.last: dt.datetime | None = None

    def _tally(self) -> Tally:
        return Tally(len(self.metric_names), len(self.feedback_names))

    def _pair_counters(self) -> list[Counter]:
        return [Counter() for _ in self.metric_names]

    def add(self, o: Observation) -> None:
        side = self.new if o.new else self.old
        side[o.window].add(o)
        side[ALL].add(o)
        if o.new:
            self.serving.add(o)
            self.first = o.time if self.first is None or o.time < self.first else self.first
            self.last = o.time if self.last is None or o.time > self.last else self.last
        if o.request_id is not None:
            self.answers.append(Answer(o.request_id, o.new, o.window, o.scores))

    def merge(self, chunk: "Tallies") -> None:
        """A chunk's tallies into these; its answers paired with those waiting from earlier chunks."""
        for mine, theirs in ((self.new, chunk.new), (self.old, chunk.old)):
            for window, tally in theirs.items():
                mine[window].merge(tally)
        self.serving.merge(chunk.serving)
        for when in (chunk.first, chunk.last):
            if when is not None:
                self.first = when if self.first is None or when < self.first else self.first
                self.last = when if self.last is None or when > self.last else self.last
        for answer in chunk.answers:
            self._pair(answer)

    def _pair(self, answer: Answer) -> None:
        other = self.waiting.get(answer.request_id)
        if other is None or other.new == answer.new:
            self.waiting.setdefault(answer.request_id, answer)
            return
        del self.waiting[answer.request_id]
        new, old = (answer, other) if answer.new else (other, answer)
        for window in (new.window, ALL):
            for counter, a, b in zip(self.pairs[window], new.scores, old.scores):
                counter[(a, b)] += 1

    @property
    def windows(self) -> list[str]:
        return sorted(w for w in self.new if w != ALL)

    def figures(self, window: str, reference: ReleaseReference, cfg: MonitorParams) -> list[MonitorFigure]:
        figures = _release_figures(window, self.new[window], reference, cfg, self.metric_names, self.feedback_names)
        if window in self.old:
            figures += self._comparison(window, cfg)
        return figures

    def _comparison(self, window: str, cfg: MonitorParams) -> list[MonitorFigure]:
        """This release against the previous one on the same window: every monitored metric (paired where
        the same request was answered by both, as in shadow) and every feedback rate (two samples)."""
        common = {"confidence": cfg.confidence, "min_records": cfg.min_records, "max_drop": cfg.rollout.rollback_drop}
        mine, theirs = self.new[window], self.old[window]
        pairs = self.pairs.get(window)
        paired = bool(pairs) and sum(pairs[0].values()) >= cfg.min_records
        figures = []
        for i, name in enumerate(self.metric_names):
            figures.append(analysis.comparison_figure(
                "metric", name, window, (mine.scores[i], mine.n), (theirs.scores[i], theirs.n),
                pairs=pairs[i] if paired else None, higher_is_worse=False, **common))
        for i, name in enumerate(self.feedback_names):
            (k_new, n_new), (k_old, n_old) = mine.feedback[i], theirs.feedback[i]
            if n_new and n_old:       # in shadow the new answers reach no user: no feedback to compare
                figures.append(analysis.comparison_figure("feedback", name, window, (k_new, n_new), (k_old, n_old),
                                                          pairs=None, higher_is_worse=True, **common))
        return figures


def _release_figures(window: str, tally: Tally, ref: ReleaseReference, cfg: MonitorParams, metric_names: list[str],
                     feedback_names: tuple[str, ...]) -> list[MonitorFigure]:
    common = {"confidence": cfg.confidence, "min_records": cfg.min_records}
    figures = []
    for i, name in enumerate(metric_names):
        _spec, value, n_items, _tier = ref.metrics[name]
        figures.append(analysis.metric_figure(name, window, tally.scores[i], tally.n, value, n_items,
                                              max_drop=cfg.metric_drop, **common))
    for i, name in enumerate(feedback_names):
        flagged, carrying = tally.feedback[i]
        figures.append(analysis.rate_figure("feedback", name, window, flagged, carrying,
                                            cfg.feedback_thresholds[name], **common))
    figures.append(analysis.length_drift_figure(window, tally.lengths, ref.training_words, p_threshold=cfg.drift_p_value,
                                                min_records=cfg.min_records, min_statistic=cfg.length_distance))
    figures.append(analysis.category_drift_figure(
        "input_language", window, tally.languages, ref.training_languages,
        p_threshold=cfg.drift_p_value, min_records=cfg.min_records, min_distance=cfg.mix_distance))
    if ref.label_field:
        figures.append(analysis.category_drift_figure(
            f"answer_{ref.label_field}", window, tally.labels, ref.training_labels,
            p_threshold=cfg.drift_p_value, min_records=cfg.min_records, min_distance=cfg.mix_distance))
    for name, flagged, (k, n) in (("inputs_with_pii", tally.pii, ref.pii),
                                  ("inputs_with_injection", tally.injection, ref.injection)):
        figures.append(analysis.share_drift_figure(name, window, flagged, tally.n, k, n,
                                                   max_increase=cfg.rate_increase, **common))
    return figures
