"""Evaluation across training seeds.

`toolkit evaluate-seed --seed S` (one DVC stage per seed) generates with seed S's adapter on the
held-out, OOD and canary suites and keeps each item's scores in reports/seed_evals/seed-S.json.
Each tier stage then pairs every seed's scores with the base's on the same items and reports the
per-seed deltas, their mean, the worst seed, the spread and a two-level bootstrap interval
(toolkit.evals.stats.across_seeds). The base is the same for every seed, so it is generated once,
by the tier stage.
"""

from __future__ import annotations

import time

import numpy as np

from toolkit.config import Params
from toolkit.errors import ConfigError, MissingInputError
from toolkit.evals.generation import generate, render_prompts
from toolkit.evals.preference import LOWER_IS_BETTER, preference_scores
from toolkit.evals.stats import INTERVAL_METHOD, across_seeds
from toolkit.evals.suites import Suite, load_suite
from toolkit.files import remove_outputs, sha256_path
from toolkit.layout import ADAPTER_DIR, report_path, seed_eval_path, seed_run
from toolkit.models import load_adapter_model
from toolkit.reports import (AcrossSeeds, SeedEvalReport, SeedTierScores, TrainReport, digests, read_report,
                             write_report)

SEED_TIERS = ("heldout", "ood", "canary")   # the generation tiers; lm-eval and the judge read the released adapter


def run_seed_eval(params: Params, seed: int) -> SeedEvalReport:
    from toolkit.evals.tiers import tier_settings

    started = time.perf_counter()
    path = seed_eval_path(seed)
    remove_outputs(path)
    run = seed_run(seed)
    read_report(run.report, TrainReport)     # the seed was trained (a clear message if not)
    model, tokenizer = load_adapter_model(params, run.adapter)
    tiers, suite_files = {}, []
    for name in SEED_TIERS:
        settings = tier_settings(params, name)
        suite = load_suite(settings.suite or name)
        tiers[name] = _score_adapter(model, tokenizer, suite, suite.load_items(settings.max_items), settings,
                                     f"seed {seed}: {suite.name}")
        suite_files += [suite.folder, suite.items_file]
    report = SeedEvalReport(
        stage=f"seed_eval_{seed}",
        params={f"evaluate.{name}": tier_settings(params, name).model_dump(mode="json") for name in SEED_TIERS},
        inputs=digests([run.adapter, run.report, report_path("base"), *dict.fromkeys(suite_files)]),
        seed=seed, adapter_sha256=sha256_path(run.adapter), tiers=tiers,
        wall_time_s=round(time.perf_counter() - started, 2))
    write_report(report, path)
    return report


def _score_adapter(model, tokenizer, suite: Suite, items, settings, label: str) -> SeedTierScores:
    """The adapter's outputs on a suite's items and each item's score on every metric (None where a
    metric does not apply), as the tier stage scores them."""
    from toolkit.evals.tiers import score_items

    prompts = render_prompts(tokenizer, (item.messages for item in items), (item.tools for item in items))
    meter: dict = {}
    outputs = generate(model, tokenizer, prompts, suite.max_new_tokens, settings.batch_size, label, meter)
    scores = score_items(suite, items, {"adapter": outputs})
    scores.update(preference_scores(model, tokenizer, items, settings.batch_size))
    per_item: dict[str, list[float | None]] = {}
    for metric, rows in scores.items():
        if rows:
            per_item[metric] = [None] * len(items)
            for row in rows:
                per_item[metric][row["index"]] = row["adapter"]
    means = {metric: round(float(np.mean([v for v in values if v is not None])), 6) for metric, values in per_item.items()}
    return SeedTierScores(suite=suite.name, items_sha256=sha256_path(suite.items_file), n_items=len(items),
                          scores=per_item, means=means, outputs=outputs, meter=meter)


def released_seed_outputs(tier: str, suite: Suite, n_items: int, train: TrainReport | None) -> tuple[list[str], dict, str] | None:
    """(outputs, meter, source) of the released adapter on this tier, from its seed's evaluation, when
    that evaluated the very adapter in artifacts/adapter on the very items; None: generate them."""
    if train is None or train.seeds is None or tier not in SEED_TIERS or not ADAPTER_DIR.is_dir():
        return None
    path = seed_eval_path(train.seeds.chosen)
    if not path.is_file():
        return None
    evaluated = read_report(path, SeedEvalReport)
    scored = evaluated.tiers.get(tier)
    if (scored is None or evaluated.adapter_sha256 != sha256_path(ADAPTER_DIR) or len(scored.outputs) != n_items
            or scored.n_items != n_items or scored.items_sha256 != sha256_path(suite.items_file)):
        return None
    return scored.outputs, scored.meter, f"{path.as_posix()} (the released seed's evaluation)"


def compare_across_seeds(tier: str, suite: Suite, n_items: int, scores: dict[str, list[dict]], settings,
                         train: TrainReport | None, statistics_seed: int) -> AcrossSeeds | None:
    """Every trained seed's adapter against the base on this tier's items; None outside a multi-seed
    pipeline (no select stage) or for a suite the seeds were not evaluated on."""
    if train is None or train.seeds is None or tier not in SEED_TIERS:
        return None
    items_sha256 = sha256_path(suite.items_file)
    per_seed: dict[int, dict[str, list[float | None]]] = {}
    for run in train.seeds.runs:
        path = seed_eval_path(run.seed)
        if not path.is_file():
            raise MissingInputError(f"{path}: seed {run.seed} has not been evaluated; run "
                                    f"`toolkit evaluate-seed --seed {run.seed}` (dvc repro does)")
        evaluated = read_report(path, SeedEvalReport)
        if evaluated.adapter_sha256 != run.adapter_sha256:
            raise ConfigError(f"evaluated another adapter than seed {run.seed}'s released run; evaluate the seed "
                              "again", file=str(path))
        scored = evaluated.tiers.get(tier)
        if scored is None or scored.items_sha256 != items_sha256 or scored.n_items != n_items:
            raise ConfigError(f"seed {run.seed} was evaluated on other {tier} items (the suite or "
                              f"evaluate.{tier}.max_items changed); evaluate the seed again", file=str(path))
        per_seed[run.seed] = scored.scores
    metrics = {}
    for metric, rows in scores.items():
        rows = [row for row in rows if "base" in row]
        if not rows or any(metric not in seed_scores for seed_scores in per_seed.values()):
            continue
        seed_values = {seed: [seed_scores[metric][row["index"]] for row in rows]
                       for seed, seed_scores in per_seed.items()}
        if any(value is None for values in seed_values.values() for value in values):
            continue
        metrics[metric] = across_seeds([row["base"] for row in rows], seed_values, settings.bootstrap_samples,
                                       settings.confidence, statistics_seed, metric in LOWER_IS_BETTER)
    return AcrossSeeds(seeds=[run.seed for run in train.seeds.runs], count=len(train.seeds.runs),
                       chosen=train.seeds.chosen, method=INTERVAL_METHOD, metrics=metrics)
