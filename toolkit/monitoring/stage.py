"""`toolkit monitor LOGS...`: production logs of a release measured against that release.

Reads the logs in chunks on every core (toolkit/monitoring/observe.py), keeps the records of the release
(default: the latest in the registry) and of the release it replaces inside --since/--until, and adds
each to per-window tallies (toolkit/monitoring/tally.py), so memory does not grow with the log. The
figures (toolkit/monitoring/analysis.py) use the evaluation stage's metric functions and the data
stage's detectors. Writes reports/monitor.json and reports/monitor/index.html with a plot per figure
(its interval per window, the release-time value or threshold as a line), records the run in the
ledger, and exits 1 when a rule of the monitoring policy (params.yaml `monitor`) fails, so a
scheduled job alerts.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

from toolkit.config import Params
from toolkit.errors import ConfigError, DataError, GateFailed
from toolkit.files import atomic_write_text, sha256_file
from toolkit.layout import REPORTS
from toolkit.monitoring.observe import KEPT_BAD, ChunkResult, Scope, observe
from toolkit.monitoring.reference import ReleaseReference
from toolkit.monitoring.rollout import release_version, rollout_state, write_status
from toolkit.monitoring.tally import ALL, Serving, Tallies
from toolkit.registry.bundle import Bundle
from toolkit.registry.events import append_event, registry_signer
from toolkit.registry.store import Registry
from toolkit.reports import MonitorFigure, MonitorReport, write_report
from toolkit.templating import render

MONITOR_DIR = REPORTS / "monitor"
MAX_BAD_EXAMPLES = 20


def run_monitor(params: Params, logs: list[str], *, release: str | None = None, since: dt.datetime | None = None,
                until: dt.datetime | None = None, registry_root: str | None = None, export_review: Path | None = None,
                workers: int | None = None, progress=print) -> MonitorReport:
    cfg = params.monitor
    registry = Registry(Path(registry_root or params.release.registry))
    bundle = _release_bundle(registry, release)
    version = bundle.version
    rollout = rollout_state(registry, version)
    if since is None and rollout.stage is not None:
        since = rollout.stage_started     # during a rollout, the current stage's records by default
    previous = rollout.previous_release if rollout.planned else registry.in_service(before=version)
    reference = ReleaseReference(bundle, params)
    scope = Scope(reference, version, previous, since, until, cfg.window, tuple(cfg.feedback_thresholds),
                  export=export_review is not None)
    tallies = Tallies(list(reference.metrics), scope.feedback_names)
    read = _Read()
    with _ReviewFile(export_review) as review:
        for chunk in observe(logs, scope, read.digests, workers):
            read.add(chunk)
            tallies.merge(chunk.tallies)
            review.write(chunk.review)
            if read.records // 100_000 != (read.records - chunk.records) // 100_000:
                progress(f"monitor: {read.records:,} record(s) read")
        progress(f"monitor: read {read.records} record(s) from {len(read.digests)} file(s); {read.bad_count} unreadable")
        _check_readable(read, cfg.max_bad_fraction, logs)
        if not tallies.serving.n:
            seen = ", ".join(f"{name} ({count})" for name, count in read.others.most_common(5)) or "none"
            raise DataError(f"no record of release {version} in the logs{' since ' + since.isoformat() if since else ''} "
                            f"(releases seen: {seen}); a record names its release in `release` (or, in OpenAI-style "
                            "logs, the served model's name)", file=", ".join(read.digests))
        review.keep()
    if export_review is not None:
        progress(f"monitor: {review.rows} record(s) for review -> {export_review}")

    windows = tallies.windows
    figures: list[MonitorFigure] = []
    for window in windows + [ALL]:
        figures += tallies.figures(window, reference, cfg)
    serving = _serving(tallies.serving, reference, cfg.max_cost_overrun)
    failed = [f"{f.window}: {f.kind} {f.name}: {f.message}" for f in figures if f.status == "failed"]
    warnings = reference.warnings + serving.pop("warnings")

    MONITOR_DIR.mkdir(parents=True, exist_ok=True)
    plots = _plots(figures, windows)
    report = MonitorReport(
        params={"monitor": params.section("monitor")},
        inputs={**read.digests, bundle.release_info.as_posix(): sha256_file(bundle.release_info)},
        release=version, bundle=bundle.root.as_posix(), window=cfg.window,
        since=since.isoformat() if since else None, until=until.isoformat() if until else None,
        records_read=read.records, records_used=tallies.serving.n, records_other_releases=dict(read.others),
        bad_records=read.bad_count,
        bad_examples=[{"file": b.file, "line": b.line, "field": b.field, "reason": b.reason}
                      for b in read.bad[:MAX_BAD_EXAMPLES]],
        layouts=dict(read.layouts), windows=windows,
        first_record=tallies.first.isoformat(), last_record=tallies.last.isoformat(),
        rollout_stage=rollout.stage_name, previous_release=previous, records_previous=tallies.old[ALL].n
        if ALL in tallies.old else 0,
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


class _Read:
    """What was read: record and bad-record counts, layouts, other releases, each file's SHA-256."""

    def __init__(self):
        self.records = self.bad_count = 0
        self.bad, self.layouts, self.others, self.digests = [], Counter(), Counter(), {}

    def add(self, chunk: ChunkResult) -> None:
        self.records += chunk.records
        self.bad_count += chunk.bad_count
        self.bad += chunk.bad[:max(0, KEPT_BAD - len(self.bad))]
        self.layouts.update(chunk.layouts)
        self.others.update(chunk.other_releases)


def _check_readable(read: _Read, max_bad_fraction: float, logs: list[str]) -> None:
    if read.records == 0:
        raise DataError("the logs hold no record", file=", ".join(read.digests) or ", ".join(logs))
    if read.bad_count > max_bad_fraction * read.records:
        first = read.bad[0]
        raise DataError(f"{first.reason}", file=first.file, line=first.line, field=first.field,
                        more=[str(b) for b in read.bad[1:]],
                        note=f"{read.bad_count} of {read.records} records unreadable, more than "
                             f"monitor.max_bad_fraction ({max_bad_fraction:.0%})")


class _ReviewFile:
    """--export-review rows written as they come (to a temporary file beside the target, renamed at the
    end), so a large log's failures are never all in memory; nothing is left behind on an error."""

    def __init__(self, path: Path | None):
        self.path, self.rows, self._handle = path, 0, None

    def __enter__(self) -> "_ReviewFile":
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, self._temp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            self._handle = os.fdopen(fd, "w", encoding="utf-8")
        return self

    def write(self, rows: list[dict]) -> None:
        if self._handle is not None:
            for row in rows:
                self._handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
            self.rows += len(rows)

    def keep(self) -> None:
        if self._handle is not None:
            self._handle.close()
            os.replace(self._temp, self.path)
            self._handle = None

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            self._handle.close()
            os.unlink(self._temp)


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
    wanted = release_version(registry, version, purpose="monitoring compares production with a release")
    bundle = Bundle(registry.bundle(wanted))
    if not bundle.is_bundle():
        raise ConfigError(f"{bundle.root}: the bundle of release {wanted} is missing", key="--release")
    return bundle


def _serving(tally: Serving, ref: ReleaseReference, max_overrun: float) -> dict:
    """Latency and tokens per request, and requests and serving cost per day at the cost report's prices."""
    from toolkit.finops.economics import DAYS_PER_MONTH

    days = max(1, len(tally.days))
    result = {
        "latency_ms_p50": tally.latency_quantile(0.5), "latency_ms_p95": tally.latency_quantile(0.95),
        "tokens_per_request": round(tally.tokens / tally.with_tokens, 1) if tally.with_tokens else None,
        "requests_per_day": round(tally.n / days, 1), "days": days, "warnings": [],
    }
    inference = ref.cost.get("inference") or {}
    if tally.with_tokens and inference.get("tokens_per_second"):
        tokens_per_day = tally.tokens / days
        capacity = inference["tokens_per_second"] * inference["utilisation"] * 86400
        instances = max(1, math.ceil(tokens_per_day / capacity))
        per_day = instances * inference["price_per_hour"] * 24
        estimate = inference["self_hosted_monthly"] / DAYS_PER_MONTH
        result.update(instances=instances, cost_per_day=round(per_day, 4), estimated_cost_per_day=round(estimate, 4),
                      device=inference.get("device"), currency=ref.cost.get("currency"))
        if per_day > estimate * (1 + max_overrun):
            result["warnings"].append(f"serving needs {instances} x {inference.get('device')} at the observed volume: "
                                      f"{per_day:.2f} {ref.cost.get('currency')}/day against {estimate:.2f} estimated")
    elif tally.with_tokens:
        result["warnings"].append("the release's cost report has no serving estimate: cost per day not priced")
    return result


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
