"""Headline figures: the few numbers per stage a person compares between runs.

`dvc metrics show`, `dvc metrics diff` and `dvc exp show` read `metrics/<stage>.json`. These files are
small and committed to git (the full reports are outputs, not metrics), so every commit and every
`dvc exp run` holds its own figures and any two can be compared. A report of hundreds of fields
(timestamps, hashes, datasheet text) would bury the numbers that matter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from toolkit.files import atomic_write_json
from toolkit.layout import METRICS


def path(stage: str) -> Path:
    """metrics/<name>.json of a report's stage: data, train, <suite>, general, judge, cost, gate."""
    name = {"validate": "data"}.get(stage, stage.removeprefix("eval_"))
    return METRICS / f"{name}.json"


def write_for(report) -> Path | None:
    """The headline of a report just written, for the stages that have one (every other eval_* stage
    is a suite's tier)."""
    by_stage = {"validate": data, "train": train, "eval_judge": judge, "eval_general": general_capability,
                "cost": cost, "gate": gate}
    figures = by_stage.get(report.stage) or (tier if report.stage.startswith("eval_") else None)
    return atomic_write_json(path(report.stage), _rounded(figures(report))) if figures else None


def data(report) -> dict[str, Any]:
    return {"records_in": report.records_in, "records_out": report.records_out,
            "records_quarantined": report.records_quarantined,
            "pii_unredacted": report.pii.unredacted_findings,
            "contaminated_remaining": report.contamination.remaining}


def train(report) -> dict[str, Any]:
    figures = {"final_loss": report.final_loss, "validation_loss": report.validation_loss,
               "optimizer_steps": report.optimizer_steps, "tokens_per_s": report.tokens_per_s,
               "wall_time_s": report.wall_time_s}
    if report.seeds:   # the pipeline's seeds: how many ran and which one is released
        figures.update(seeds=report.seeds.count, chosen_seed=report.seeds.chosen)
    if report.method == "grpo":   # what GRPO optimises: the mean weighted reward
        figures.update({name: report.objective.get(name) for name in ("first_reward", "final_reward",
                                                                      "best_validation_reward")})
    return figures


def tier(report) -> dict[str, Any]:
    """The primary metric, base vs adapter with the paired CI of the difference, and the item count;
    on preference data also the preference accuracy, what preference tuning is meant to change."""
    if report.skipped:
        return {"skipped": True}
    shown = dict.fromkeys([report.primary_metric] + [name for name in ("preference_accuracy",) if name in report.metrics])
    figures = {"n_items": report.n_items, **{name: {"base": m.base, "adapter": m.adapter, "delta": m.delta,
                                                    "ci_low": m.ci_low, "ci_high": m.ci_high}
                                             for name, m in ((name, report.metrics[name]) for name in shown)}}
    seeds = report.across_seeds
    if seeds and seeds.count > 1 and report.primary_metric in seeds.metrics:   # the delta across training seeds
        d = seeds.metrics[report.primary_metric]
        figures["across_seeds"] = {"seeds": seeds.count, "mean_delta": d.mean, "worst_delta": d.worst,
                                   "spread": d.spread, "ci_low": d.ci_low, "ci_high": d.ci_high}
    return figures


def general_capability(report) -> dict[str, Any]:
    """Each metric of the lm-eval tier over all tasks, base vs adapter; per task (MMLU has 57
    subjects) it stays in the report."""
    if report.skipped:
        return {"skipped": True}
    return {"n_items": report.n_items, **{name: {"base": m.base, "adapter": m.adapter, "delta": m.delta,
                                                 "ci_low": m.ci_low, "ci_high": m.ci_high}
                                          for name, m in report.metrics.items() if ":" not in name}}


def judge(report) -> dict[str, Any]:
    if report.skipped or report.win_rate is None:
        return {"skipped": True}
    return {"n_pairs": report.n_pairs, "win_rate": report.win_rate.point, "win_rate_ci_low": report.win_rate.ci_low,
            "win_rate_ci_high": report.win_rate.ci_high}


def cost(report) -> dict[str, Any]:
    return {"training_cost": report.training.cost, "training_hours": report.training.hours,
            "serving_monthly": report.inference.self_hosted_monthly,
            "payback_months": report.roi.payback_months, "roi": report.roi.roi}


def gate(report) -> dict[str, Any]:
    return {"passed": report.passed, "blocking_failures": report.blocking_failures, "warnings": report.warnings}


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    return value
