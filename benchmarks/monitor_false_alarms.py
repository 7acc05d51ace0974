"""Monitoring on synthetic production logs: false alarms on logs without any effect (20 seeds), the
effects found, and the time and memory to read and judge a large log.

Run: python benchmarks/monitor_false_alarms.py [--out benchmarks/results/monitor.json]
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from common import machine, out_path, write_result  # noqa: E402
from production_logs import RELEASE_ITEMS, RELEASE_JSON_VALID, production_logs, released_project, write_logs  # noqa: E402

from toolkit.config import Params  # noqa: E402
from toolkit.errors import GateFailed  # noqa: E402
from toolkit.monitoring.analysis import difference_interval  # noqa: E402
from toolkit.monitoring.stage import run_monitor  # noqa: E402

SEEDS = range(20)
QUIET = {"progress": lambda _: None}


def _monitor(logs: str):
    try:
        return run_monitor(Params(), [logs], **QUIET)
    except GateFailed:
        return json.loads(Path("reports/monitor.json").read_text())


def _figures(report) -> list[dict]:
    figures = report["figures"] if isinstance(report, dict) else [f.model_dump() for f in report.figures]
    return [f for f in figures if f["status"] in ("ok", "failed")]


def main() -> None:
    out = out_path(__doc__, "benchmarks/results/monitor.json")
    out = str(Path(out).resolve())
    with tempfile.TemporaryDirectory(prefix="toolkit-monitor-") as tmp:
        os.chdir(tmp)
        released_project(Path(tmp))
        judged, alarms, runs_with_alarm, by_figure = 0, 0, 0, Counter()
        metric_tests, significant = 0, 0     # the difference test alone, at the 95 % level, two-sided
        heldout = Path("registry/releases/v1/reports/eval_heldout.json")
        for seed in SEEDS:
            # The release's figure is itself a measurement on RELEASE_ITEMS items: drawn here as it would be.
            rng = random.Random(seed)
            release_value = sum(rng.random() < RELEASE_JSON_VALID for _ in range(RELEASE_ITEMS)) / RELEASE_ITEMS
            report = json.loads(heldout.read_text())
            for name in ("json_valid", "ticket_schema"):
                report["metrics"][name]["adapter"] = release_value
            heldout.write_text(json.dumps(report))
            write_logs(Path(f"logs/{seed}.jsonl"), production_logs(seed=1000 + seed))
            figures = _figures(_monitor(f"logs/{seed}.jsonl"))
            failed = [f for f in figures if f["status"] == "failed"]
            judged += len(figures)
            alarms += len(failed)
            runs_with_alarm += bool(failed)
            by_figure.update(f["name"] for f in failed)
            for f in figures:
                if f["kind"] == "metric":
                    low, high = difference_interval(f["value"] * f["n"], f["n"], f["reference"] * RELEASE_ITEMS,
                                                    RELEASE_ITEMS, 0.95)
                    metric_tests += 1
                    significant += low > 0 or high < 0
        report = json.loads(heldout.read_text())
        for name in ("json_valid", "ticket_schema"):
            report["metrics"][name]["adapter"] = RELEASE_JSON_VALID
        heldout.write_text(json.dumps(report))
        effects = {}
        for name, effect in (("invalid JSON +8 points", {"invalid_up": 0.08}), ("re-route 5% -> 25%", {"rerouted_after": 0.25}),
                             ("longer German inputs", {"german_after": True})):
            hits = 0
            for seed in range(5):
                write_logs(Path("logs/effect.jsonl"), production_logs(seed=2000 + seed, effect_day=4, **effect))
                failed_days = {f["window"] for f in _figures(_monitor("logs/effect.jsonl")) if f["status"] == "failed"}
                days = {f"2026-11-0{d}" for d in range(6, 9)}
                hits += days <= failed_days and not failed_days & {f"2026-11-0{d}" for d in range(2, 6)}
            effects[name] = f"{hits} of 5 seeds: found on every day from the effect on, none before"
        # The difference test's own calibration: both the production window and the release measured
        # afresh each time (4,000 pairs of 400 and RELEASE_ITEMS items at the release's rate).
        rng, pairs, rejected = random.Random(99), 4000, 0
        for _ in range(pairs):
            k1 = sum(rng.random() < RELEASE_JSON_VALID for _ in range(400))
            k0 = sum(rng.random() < RELEASE_JSON_VALID for _ in range(RELEASE_ITEMS))
            low, high = difference_interval(k1, 400, k0, RELEASE_ITEMS, 0.95)
            rejected += low > 0 or high < 0
        calibration = {"pairs": pairs, "significant_at_95": rejected, "rate": round(rejected / pairs, 4)}
        rollout = _rollout_comparisons(Path(tmp))
    write_result(out, {
        "machine": machine(),
        "false_alarms": {"runs": len(SEEDS), "days_per_run": 7, "records_per_day": 400, "judged_figures": judged,
                         "false_alarms": alarms, "rate_per_judged_figure": round(alarms / judged, 4),
                         "runs_with_any_alarm": runs_with_alarm, "by_figure": dict(by_figure),
                         "metric_difference_tests": metric_tests, "significant_at_95": significant,
                         "significant_rate": round(significant / metric_tests, 4)},
        "difference_test_calibration": calibration,
        "effects_found": effects,
        "rollout_comparison": rollout,
    })


def _rollout_comparisons(root: Path) -> dict:
    """v2 rolls out beside v1 (released_project makes both): comparison figures on logs where v2 is like
    v1 (20 seeds each for shadow and a 10 % split), and where v2 answers invalid JSON 8 points more often."""
    from production_logs import rollout_logs
    from toolkit.monitoring import rollout
    from toolkit.registry.store import Registry

    released_project(root, "2")
    registry = Registry(root / "registry")
    rollout.plan(Params(), registry)
    start = rollout.rollout_state(registry, "2").stage_started
    result = {}
    for stage, traffic, per_day in (("shadow", 0.0, 400), ("10pct", 0.1, 4000)):
        judged = alarms = 0
        for seed in SEEDS:
            write_logs(Path("logs/rollout.jsonl"), rollout_logs(seed=3000 + seed, start=start, days=2, per_day=per_day,
                                                                traffic=traffic))
            figures = [f for f in _figures(_monitor("logs/rollout.jsonl")) if f["kind"] == "comparison"]
            judged += len(figures)
            alarms += sum(f["status"] == "failed" for f in figures)
        found = 0
        for seed in range(5):
            write_logs(Path("logs/rollout.jsonl"), rollout_logs(seed=4000 + seed, start=start, days=2, per_day=per_day,
                                                                traffic=traffic, invalid_up=0.08))
            failed = {f["name"] for f in _figures(_monitor("logs/rollout.jsonl")) if f["status"] == "failed"
                      and f["kind"] == "comparison" and f["window"] == "all"}
            found += "metric:json_valid" in failed
        result[stage] = {"requests_per_day": per_day, "traffic": traffic, "judged_figures": judged,
                         "false_alarms": alarms, "rate_per_judged_figure": round(alarms / judged, 4) if judged else None,
                         "invalid_json_plus_8_points_found": f"{found} of 5 seeds"}
    return result


if __name__ == "__main__":
    main()
