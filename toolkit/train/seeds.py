"""The select stage: of the adapters trained with each of train.seeds, the one that is released.

The rule (train.seed_selection) reads the training runs' own validation figures and nothing the
evaluation tiers measure, so choosing a seed cannot overfit the held-out tier: best_validation takes
the lowest validation loss (GRPO: the highest validation reward), first takes train.seeds[0]. The
chosen seed's adapter is copied to artifacts/adapter and its report to reports/train.json with a
`seeds` section listing every run; the evaluation tiers then measure that adapter and, from
reports/seed_evals/, the spread across all of them.
"""

from __future__ import annotations

import shutil

from toolkit import headline
from toolkit.config import Params
from toolkit.errors import ConfigError, MissingInputError
from toolkit.files import remove_outputs, sha256_path
from toolkit.layout import ADAPTER_DIR, report_path, seed_run
from toolkit.reports import SeedRun, SeedSelection, TrainReport, digests, read_report, write_report


def run_select(params: Params) -> TrainReport:
    remove_outputs(report_path("train"), headline.path("train"), ADAPTER_DIR)
    cfg = params.train
    runs = {seed: _seed_run(seed) for seed in cfg.seeds}
    chosen, rule_field = choose(cfg.seed_selection, cfg.method, {seed: entry for seed, (_, entry) in runs.items()})
    report = runs[chosen][0]
    source = seed_run(chosen).adapter
    shutil.copytree(source, ADAPTER_DIR)
    selection = SeedSelection(
        count=len(runs), seeds=list(cfg.seeds), rule=cfg.seed_selection, rule_field=rule_field, chosen=chosen,
        runs=[entry for _, entry in runs.values()],
        total_wall_time_s=round(sum(r.wall_time_s + r.previous_wall_time_s for r, _ in runs.values()), 2),
        total_gpu_hours=round(sum(r.gpu_hours for r, _ in runs.values()), 4))
    selected = report.model_copy(update={
        "inputs": {**report.inputs, **digests([seed_run(seed).report for seed in cfg.seeds])},
        "outputs": digests([ADAPTER_DIR]), "seeds": selection})
    write_report(selected)
    return selected


def _seed_run(seed: int) -> tuple[TrainReport, SeedRun]:
    run = seed_run(seed)
    if not run.report.is_file() or not run.adapter.is_dir():
        raise MissingInputError(f"{run.report}: seed {seed} of train.seeds has not been trained; run "
                                f"`toolkit train --seed {seed}` (dvc repro does)")
    report = read_report(run.report, TrainReport)
    adapter_sha256 = sha256_path(run.adapter)
    if report.outputs.get(run.adapter.as_posix()) != adapter_sha256:
        raise ConfigError(f"the adapter in {run.adapter} is not the one this report trained; train the seed again",
                          file=str(run.report))
    reward = report.objective.get("best_validation_reward") if report.method == "grpo" else None
    return report, SeedRun(seed=seed, report=run.report.as_posix(), adapter_sha256=adapter_sha256,
                           validation_loss=report.validation_loss, validation_reward=reward,
                           optimizer_steps=report.optimizer_steps, wall_time_s=report.wall_time_s,
                           gpu_hours=report.gpu_hours)


def choose(rule: str, method: str, runs: dict[int, SeedRun]) -> tuple[int, str | None]:
    """(the chosen seed, the validation figure the rule read); ties go to the earlier seed in train.seeds."""
    seeds = list(runs)
    if rule == "first":
        return seeds[0], None
    field = "validation_reward" if method == "grpo" else "validation_loss"
    values = {seed: getattr(entry, field) for seed, entry in runs.items()}
    missing = [seed for seed, value in values.items() if value is None]
    if missing:
        raise ConfigError(f"seed_selection best_validation needs each run's {field.replace('_', ' ')}, but seed(s) "
                          f"{', '.join(map(str, missing))} had no validation split to compute it on; set "
                          "data.validation_fraction above 0, or train.seed_selection: first",
                          file="params.yaml", key="train.seed_selection")
    sign = -1 if field == "validation_reward" else 1     # a higher reward is better, a lower loss
    return min(seeds, key=lambda seed: (sign * values[seed], seeds.index(seed))), field
