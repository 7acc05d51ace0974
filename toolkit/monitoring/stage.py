"""`toolkit monitor LOGS...`: production logs of a release measured against that release.

Reads the logs (toolkit/monitoring/logs.py), keeps the records of the release (default: the latest in
the registry) inside --since/--until, and computes per window (day or week) and for the whole span
the figures of toolkit/monitoring/analysis.py, with the evaluation stage's metric functions and the
data stage's detectors. Writes reports/monitor.json and reports/monitor/index.html with a plot per
figure (its interval per window, the release-time value or threshold as a line). A failed rule of
the monitoring policy (params.yaml `monitor`) makes the command exit 1, so a scheduled job alerts.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from toolkit.config import Params
from toolkit.errors import ConfigError, DataError, GateFailed
from toolkit.files import atomic_write_text, read_jsonl, sha256_file
from toolkit.layout import REPORTS, SPLIT_FILES
from toolkit.monitoring import analysis
from toolkit.monitoring.language import language_of
from toolkit.monitoring.logs import LogRecord, read_logs
from toolkit.monitoring.rollout import previous_release, rollout_state, write_status
from toolkit.registry.bundle import Bundle
from toolkit.registry.events import append_event, registry_signer
from toolkit.registry.store import Registry
from toolkit.reports import MonitorFigure, MonitorReport, write_report
from toolkit.templating import render

MONITOR_DIR = REPORTS / "monitor"
MAX_BAD_EXAMPLES = 20


def run_monitor(params: Params, logs: list[str], *, release: str | None = None, since: dt.datetime | None = None,
                until: dt.datetime | None = None, registry_root: str | None = None, export_review: Path | None = None,
                progress=print) -> MonitorReport:
    cfg = params.monitor
    registry = Registry(Path(registry_root or params.release.registry))
    bundle = _release_bundle(registry, release)
    version = bundle.version
    rollout = rollout_state(registry, version)
    if since is None and rollout.stage is not None:
        since = rollout.stage_started     # during a rollout, the current stage's records by default
    previous = rollout.previous_release if rollout.planned else previous_release(registry, version)
    read = read_logs(logs)
    progress(f"monitor: read {read.total} record(s) from {len(read.files)} file(s); {len(read.bad)} unreadable")
    if read.total == 0:
        raise DataError("the logs hold no record", file=", ".join(read.files) or ", ".join(logs))
    if len(read.bad) > cfg.max_bad_fraction * read.total:
        first = read.bad[0]
        raise DataError(f"{first.reason}", file=first.file, line=first.line, field=first.field,
                        more=[str(b) for b in read.bad[1:]],
                        note=f"{len(read.bad)} of {read.total} records unreadable, more than monitor.max_bad_fraction "
                             f"({cfg.max_bad_fraction:.0%})")
    in_span = [r for r in read.records if (since is None or r.time >= since) and (until is None or r.time < until)]
    others = Counter(r.release or "(none)" for r in read.records if r.release != version)
    records = sorted((r for r in in_span if r.release == version), key=lambda r: r.time)
    if not records:
        seen = ", ".join(f"{name} ({count})" for name, count in others.most_common(5)) or "none"
        raise DataError(f"no record of release {version} in the logs{' since ' + since.isoformat() if since else ''} "
                        f"(releases seen: {seen}); a record names its release in `release` (or, in OpenAI-style "
                        "logs, the served model's name)", file=", ".join(read.files))

    reference = _ReleaseReference(bundle, params)
    measured = [_measure(record, reference) for record in records]     # each record scored and scanned once
    theirs = [_measure(r, reference) for r in in_span if previous is not None and r.release == previous]
    groups, their_groups = defaultdict(list), defaultdict(list)
    for item in measured:
        groups[analysis.window_of(item.record.time, cfg.window)].append(item)
    for item in theirs:
        their_groups[analysis.window_of(item.record.time, cfg.window)].append(item)
    windows = sorted(groups)
    figures: list[MonitorFigure] = []
    for name, group, other in [(w, groups[w], their_groups.get(w, [])) for w in windows] + [("all", measured, theirs)]:
        figures += _window_figures(name, group, reference, params)
        if other:
            figures += _comparison_figures(name, group, other, reference, params)
    serving = _serving(records, reference, cfg.max_cost_overrun)
    failed = [f"{f.window}: {f.kind} {f.name}: {f.message}" for f in figures if f.status == "failed"]
    warnings = reference.warnings + serving.pop("warnings")

    if export_review is not None:
        exported = export_for_review(measured, reference, export_review, cfg.window, list(cfg.feedback_thresholds))
        progress(f"monitor: {exported} record(s) for review -> {export_review}")
    MONITOR_DIR.mkdir(parents=True, exist_ok=True)
    plots = _plots(figures, windows)
    report = MonitorReport(
        params={"monitor": params.section("monitor")},
        inputs={**read.files, bundle.release_info.as_posix(): sha256_file(bundle.release_info)},
        release=version, bundle=bundle.root.as_posix(), window=cfg.window,
        since=since.isoformat() if since else None, until=until.isoformat() if until else None,
        records_read=read.total, records_used=len(records), records_other_releases=dict(others),
        bad_records=len(read.bad),
        bad_examples=[{"file": b.file, "line": b.line, "field": b.field, "reason": b.reason}
                      for b in read.bad[:MAX_BAD_EXAMPLES]],
        layouts=read.layouts, windows=windows,
        first_record=records[0].time.isoformat(), last_record=records[-1].time.isoformat(),
        rollout_stage=rollout.stage_name, previous_release=previous, records_previous=len(theirs),
        figures=figures, serving=serving, failed=failed, warnings=warnings,
        passed=not failed, html_report=(MONITOR_DIR / "index.html").as_posix(),
    )
    atomic_write_text(MONITOR_DIR / "index.html", render("monitor_report.html.j2", report=report, plots=plots))
    path = write_report(report)
    _record(params, registry, report, path)
    if failed:
        raise GateFailed(f"monitoring FAILED for release {version}: {len(failed)} rule(s): " + "; ".join(failed[:5])
                         + (f"; ... and {len(failed) - 5} more" if len(failed) > 5 else "")
                         + f" (report: {report.html_report})")
    return report


def _record(params: Params, registry: Registry, report: MonitorReport, path: Path) -> None:
    """The monitoring event in the ledger (signed when a release key is configured), and the release's
    post-market record re-rendered with it."""
    signer = registry_signer(registry.root, params.release.signing.key)
    append_event(registry.ledger, {
        "event": "monitor", "version": report.release, "report_sha256": sha256_file(path), "passed": report.passed,
        "stage": report.rollout_stage, "records": report.records_used, "first_record": report.first_record,
        "last_record": report.last_record, "failed": report.failed[:10],
    }, signer=signer)
    write_status(registry, report.release)


def _release_bundle(registry: Registry, version: str | None) -> Bundle:
    entries = registry.entries() if registry.ledger.is_file() else []
    if not entries:
        raise ConfigError(f"no release in {registry.root}: monitoring compares production with a release",
                          key="--release")
    versions = [e.version for e in entries]
    wanted = (version or versions[-1]).removeprefix("v")
    if wanted not in versions:
        raise ConfigError(f"release {wanted} is not in the ledger (released: {', '.join(versions)})", key="--release")
    bundle = Bundle(registry.bundle(wanted))
    if not bundle.is_bundle():
        raise ConfigError(f"{bundle.root}: the bundle of release {wanted} is missing", key="--release")
    return bundle


class _ReleaseReference:
    """What the release measured: reference-free suite metrics per tier, the training data's inputs,
    and the cost report's serving estimate."""

    def __init__(self, bundle: Bundle, params: Params):
        from toolkit.data import injection
        from toolkit.data.pii import PiiScanner

        self.warnings: list[str] = []
        self.metrics = self._metrics(bundle)
        validate = bundle.read_report("validate")
        out = max(1, validate.get("records_out", 0))
        self.pii = (validate.get("pii", {}).get("records_with_pii", 0), out)
        self.injection = (validate.get("injection", {}).get("flagged_records", 0), out)
        self.label_field = params.monitor.label_field
        self.training_words, self.training_languages, self.training_labels = self._training_inputs(validate)
        self.cost = bundle.read_report("cost") if bundle.report("cost").is_file() else {}
        pii_cfg = params.data.pii
        self.scanner = PiiScanner(tuple(pii_cfg.detectors), tuple(pii_cfg.phone_regions), min_score=dict(pii_cfg.min_score))
        self.patterns = injection.load_patterns()

    def _metrics(self, bundle: Bundle) -> dict[str, tuple]:
        """name -> (SuiteMetric, release value, release items) for every metric that needs no reference."""
        from toolkit.evals.suites import load_suite

        found = {}
        for tier in ("heldout", "canary"):
            if not bundle.report(f"eval_{tier}").is_file():
                continue
            tier_report = bundle.read_report(f"eval_{tier}")
            try:
                suite = load_suite(tier_report.get("suite", tier))
            except ConfigError as exc:
                self.warnings.append(f"the {tier} suite cannot be read, its metrics are not monitored: {exc}")
                continue
            for name, spec in suite.metrics.items():
                recorded = tier_report.get("metrics", {}).get(name)
                if spec.metric.needs_reference or recorded is None or not _usable(spec):
                    continue
                found.setdefault(name, (spec, recorded["adapter"], tier_report["n_items"], tier))
        if not found:
            self.warnings.append("the release's suites have no metric that needs no reference: nothing to score")
        return found

    def _training_inputs(self, validate: dict) -> tuple[list[int], Counter, Counter]:
        """User-text lengths, languages and answer labels of the release's training split, when the file
        here is the one it validated."""
        path = SPLIT_FILES["train"]
        recorded = validate.get("outputs", {}).get(path.as_posix())
        if not path.is_file() or recorded != sha256_file(path):
            self.warnings.append(f"{path} is not the training split of this release (missing or changed): input "
                                 "length, language and label drift are not tested")
            return [], Counter(), Counter()
        words, languages, labels = [], Counter(), Counter()
        for row in read_jsonl(path):
            text = _user_text(row.get("messages") or row.get("prompt") or [])
            words.append(_words(text))
            languages[language_of(text)] += 1
            if self.label_field:
                label = _label(_training_answer(row), self.label_field)
                if label is not None:
                    labels[label] += 1
        return words, languages, labels


def _training_answer(row: dict) -> str:
    """The answer a training record teaches: its last assistant turn, or its completion."""
    turns = row.get("messages") or []
    answers = [m.get("content") for m in turns if isinstance(m, dict) and m.get("role") == "assistant"]
    answer = answers[-1] if answers else row.get("completion")
    if isinstance(answer, list):
        answer = _user_text(answer) if all(isinstance(m, dict) and "role" in m for m in answer) else ""
    return answer if isinstance(answer, str) else ""


def _label(answer: str, key: str) -> str | None:
    """The value of `key` in a JSON answer; None when the answer is not JSON or lacks it (the suite
    metrics judge such answers; the label mix is of the answers that carry one)."""
    try:
        value = json.loads(answer)
    except (json.JSONDecodeError, RecursionError):
        return None
    if isinstance(value, dict) and isinstance(value.get(key), (str, int, float, bool)):
        return str(value[key])
    return None


def _usable(spec) -> bool:
    """A metric whose suite-level arguments are complete (per-item arguments cannot apply to logs)."""
    try:
        spec.metric("", None, **spec.args)
        return True
    except (TypeError, ValueError, KeyError):
        return False


def _user_text(messages) -> str:
    if isinstance(messages, str):
        return messages
    return "\n".join(m.get("content", "") for m in messages if isinstance(m, dict) and m.get("role") == "user"
                     and isinstance(m.get("content"), str))


def _words(text: str) -> int:
    return len(text.split())


@dataclass(frozen=True)
class _Measured:
    """What one record measured: its metric scores and its input's words, PII and injection flags."""
    record: LogRecord
    scores: dict[str, float]
    words: int
    pii: bool
    injection: bool
    language: str
    label: str | None           # the answer's monitor.label_field value, when one is set


def _measure(record: LogRecord, ref: _ReleaseReference) -> _Measured:
    text = record.user_text
    return _Measured(record, {name: spec.metric(record.response, record.reference, **spec.args)
                              for name, (spec, *_release) in ref.metrics.items()},
                     _words(text), bool(ref.scanner.find(text)), any(p.search(text) for _, p in ref.patterns),
                     language_of(text), _label(record.response, ref.label_field) if ref.label_field else None)


def _window_figures(window: str, measured: list[_Measured], ref: _ReleaseReference,
                    params: Params) -> list[MonitorFigure]:
    cfg = params.monitor
    common = {"confidence": cfg.confidence, "min_records": cfg.min_records}
    figures = []
    for name, (_spec, value, n_items, _tier) in ref.metrics.items():
        scores = [m.scores[name] for m in measured]
        figures.append(analysis.metric_figure(name, window, scores, value, n_items, max_drop=cfg.metric_drop, **common))
    records = [m.record for m in measured]
    for name, threshold in cfg.feedback_thresholds.items():
        flags = analysis.feedback_flags(records, name)
        figures.append(analysis.rate_figure("feedback", name, window, flags, threshold, **common))
    figures.append(analysis.length_drift_figure(window, [m.words for m in measured], ref.training_words,
                                                p_threshold=cfg.drift_p_value, min_records=cfg.min_records))
    figures.append(analysis.category_drift_figure(
        "input_language", window, Counter(m.language for m in measured), ref.training_languages,
        p_threshold=cfg.drift_p_value, min_records=cfg.min_records, min_distance=cfg.mix_distance))
    if ref.label_field:
        figures.append(analysis.category_drift_figure(
            f"answer_{ref.label_field}", window, Counter(m.label for m in measured if m.label is not None),
            ref.training_labels, p_threshold=cfg.drift_p_value, min_records=cfg.min_records,
            min_distance=cfg.mix_distance))
    for name, flags, (k, n) in (("inputs_with_pii", [m.pii for m in measured], ref.pii),
                                ("inputs_with_injection", [m.injection for m in measured], ref.injection)):
        figures.append(analysis.share_drift_figure(name, window, flags, k, n, max_increase=cfg.rate_increase, **common))
    return figures


def _comparison_figures(window: str, mine: list[_Measured], theirs: list[_Measured], ref: _ReleaseReference,
                        params: Params) -> list[MonitorFigure]:
    """This release against the previous one on the same window: every monitored metric (paired where the
    same request was answered by both, as in shadow) and every feedback rate (two samples)."""
    cfg = params.monitor
    common = {"confidence": cfg.confidence, "min_records": cfg.min_records, "max_drop": cfg.rollout.rollback_drop}
    their_answers = {m.record.request_id: m for m in theirs if m.record.request_id is not None}
    pairs = [(m, their_answers[m.record.request_id]) for m in mine if m.record.request_id in their_answers]
    paired = len(pairs) >= cfg.min_records
    figures = []
    for name in ref.metrics:
        if paired:
            new, old = [a.scores[name] for a, _ in pairs], [b.scores[name] for _, b in pairs]
        else:
            new, old = [m.scores[name] for m in mine], [m.scores[name] for m in theirs]
        figures.append(analysis.comparison_figure("metric", name, window, new, old, paired=paired,
                                                  higher_is_worse=False, **common))
    for name in cfg.feedback_thresholds:
        new = analysis.feedback_flags([m.record for m in mine], name)
        old = analysis.feedback_flags([m.record for m in theirs], name)
        if new and old:       # in shadow the new answers reach no user: no feedback to compare
            figures.append(analysis.comparison_figure("feedback", name, window, new, old, paired=False,
                                                      higher_is_worse=True, **common))
    return figures


def _serving(records: list[LogRecord], ref: _ReleaseReference, max_overrun: float) -> dict:
    """Latency and tokens per request, and requests and serving cost per day at the cost report's prices."""
    from toolkit.finops.economics import DAYS_PER_MONTH

    latencies = sorted(r.latency_ms for r in records if r.latency_ms is not None)
    tokens = [r.prompt_tokens + r.completion_tokens for r in records
              if r.prompt_tokens is not None and r.completion_tokens is not None]
    days = max(1, len({r.time.date() for r in records}))
    result = {
        "latency_ms_p50": _quantile(latencies, 0.5), "latency_ms_p95": _quantile(latencies, 0.95),
        "tokens_per_request": round(sum(tokens) / len(tokens), 1) if tokens else None,
        "requests_per_day": round(len(records) / days, 1), "days": days, "warnings": [],
    }
    inference = ref.cost.get("inference") or {}
    if tokens and inference.get("tokens_per_second"):
        tokens_per_day = sum(tokens) / days
        capacity = inference["tokens_per_second"] * inference["utilisation"] * 86400
        instances = max(1, math.ceil(tokens_per_day / capacity))
        per_day = instances * inference["price_per_hour"] * 24
        estimate = inference["self_hosted_monthly"] / DAYS_PER_MONTH
        result.update(instances=instances, cost_per_day=round(per_day, 4), estimated_cost_per_day=round(estimate, 4),
                      device=inference.get("device"), currency=ref.cost.get("currency"))
        if per_day > estimate * (1 + max_overrun):
            result["warnings"].append(f"serving needs {instances} x {inference.get('device')} at the observed volume: "
                                      f"{per_day:.2f} {ref.cost.get('currency')}/day against {estimate:.2f} estimated")
    elif tokens:
        result["warnings"].append("the release's cost report has no serving estimate: cost per day not priced")
    return result


def export_for_review(measured: list[_Measured], ref: _ReleaseReference, path: Path, window: str,
                      feedback_names: list[str]) -> int:
    """Records that failed a metric or got negative feedback, as chat records the data stage reads
    (the response as the assistant's turn), personal data redacted, each with where it came from.
    Candidates for a person to review before they become evaluation or training data."""
    from toolkit.data.pii import redact
    from toolkit.files import atomic_write_jsonl

    rows = []
    for item in measured:
        record = item.record
        reasons = [f"failed {name}" for name, score in item.scores.items() if score < 1.0]
        for name in feedback_names:
            found = analysis.feedback(record.feedback, name)
            if found and found[0]:
                reasons.append(found[1])
        if not reasons:
            continue
        turns = record.messages + [{"role": "assistant", "content": record.response}]
        rows.append({
            "messages": [{"role": m["role"], "content": redact(m["content"], list(ref.scanner.find(m["content"])))}
                         for m in turns],
            "provenance": {"source": f"production log, {analysis.window_of(record.time, window)}",
                           "file": record.file, "line": record.line, "release": record.release,
                           "time": record.time.isoformat(), "reasons": reasons},
        })
    atomic_write_jsonl(path, rows)
    return len(rows)


def _quantile(values: list[float], q: float) -> float | None:
    return round(values[min(len(values) - 1, int(q * len(values)))], 1) if values else None


def _plots(figures: list[MonitorFigure], windows: list[str]) -> dict[str, str]:
    """One PNG per figure name: the value per window with its interval, and the reference as a line."""
    import matplotlib

    matplotlib.use("Agg")  # no display on CI or servers
    import matplotlib.pyplot as plt

    plots = {}
    by_name = defaultdict(list)
    for figure in figures:
        if figure.window != "all" and figure.value is not None:
            by_name[(figure.kind, figure.name)].append(figure)
    for (kind, name), series in by_name.items():
        fig, ax = plt.subplots(figsize=(7.5, 2.6), dpi=100)
        xs = [windows.index(f.window) for f in series]
        ax.plot(xs, [f.value for f in series], marker="o", color="#4a78b5", label="production")
        if all(f.ci_low is not None for f in series):
            ax.fill_between(xs, [f.ci_low for f in series], [f.ci_high for f in series], color="#4a78b5", alpha=0.2)
        if kind == "comparison":
            ax.plot(xs, [f.reference for f in series], marker=".", color="#b54a4a", linestyle="--",
                    label="previous release")
        elif series[0].reference is not None:
            ax.axhline(series[0].reference, color="#b54a4a", linestyle="--", label="release / threshold")
        for f in series:
            if f.status == "failed":
                ax.plot([windows.index(f.window)], [f.value], marker="x", color="#b54a4a", markersize=10)
        ax.set_xticks(range(len(windows)), windows, rotation=30, fontsize=7)
        ax.set_title(f"{kind}: {name}", fontsize=9)
        ax.legend(fontsize=7, loc="best")
        file = f"{kind}_{name.replace(':', '_')}.png"
        fig.tight_layout()
        fig.savefig(MONITOR_DIR / file, format="png")
        plt.close(fig)
        plots[f"{kind}:{name}"] = file
    return plots
