"""The demo's SFT recipe trained with three seeds: how far the released seed's held-out figures are
from another run's, and the across-seed interval the gate can read instead.

    .venv/bin/python benchmarks/seeds_demo.py [--seeds 1234 7 42] [--out benchmarks/results/seeds_demo.json]

Needs a completed `dvc repro` in the working tree (the builtin base, the validated splits and seed
1234's run and evaluation). In a temporary copy of those it runs what `dvc repro` runs with
`train.seeds: [1234, 7, 42]`, through the stage functions: trains the seeds not yet trained, selects
the released seed by validation loss, evaluates each seed on the held-out, OOD and canary suites and
runs those tiers (the canary without a previous release).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import yaml

from common import machine, write_result

REPO = Path(__file__).resolve().parents[1]
TIERS = ("heldout", "ood", "canary")


def seeds_project(root: Path, seeds: list[int]) -> None:
    """The working tree's base, splits, suites and already trained seeds, with params.yaml's train.seeds set."""
    for folder in ("artifacts/base", "artifacts/data", "eval_suites"):
        shutil.copytree(REPO / folder, root / folder)
    (root / "reports").mkdir()
    shutil.copy(REPO / "reports/base.json", root / "reports/base.json")
    for seed in seeds:
        for folder in (f"artifacts/runs/seed-{seed}", f"reports/runs/seed-{seed}"):
            if (REPO / folder).is_dir():
                shutil.copytree(REPO / folder, root / folder)
        if (REPO / f"reports/seed_evals/seed-{seed}.json").is_file():
            (root / "reports/seed_evals").mkdir(exist_ok=True)
            shutil.copy(REPO / f"reports/seed_evals/seed-{seed}.json", root / f"reports/seed_evals/seed-{seed}.json")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["train"]["seeds"] = seeds
    params["release"]["registry"] = "registry"     # empty: the canary has no previous release here
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1234, 7, 42])
    parser.add_argument("--out", default="benchmarks/results/seeds_demo.json")
    args = parser.parse_args()
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        seeds_project(root, args.seeds)
        cwd = Path.cwd()
        os.chdir(root)
        try:
            from toolkit.config import load_params
            from toolkit.evals.seeds import run_seed_eval
            from toolkit.evals.tiers import run_tier
            from toolkit.layout import seed_eval_path, seed_run
            from toolkit.train.run import run_train
            from toolkit.train.seeds import run_select

            params = load_params()
            for seed in args.seeds:
                if not seed_run(seed).report.is_file():
                    started = time.perf_counter()
                    run_train(params, seed)
                    timings[f"train_seed_{seed}_s"] = round(time.perf_counter() - started, 1)
            train = run_select(params)
            for seed in args.seeds:
                if not seed_eval_path(seed).is_file():
                    started = time.perf_counter()
                    run_seed_eval(params, seed)
                    timings[f"evaluate_seed_{seed}_s"] = round(time.perf_counter() - started, 1)
            reports = {}
            for tier in TIERS:
                started = time.perf_counter()
                reports[tier] = run_tier(params, tier)
                timings[f"{tier}_tier_s"] = round(time.perf_counter() - started, 1)
        finally:
            os.chdir(cwd)

    def tier_figures(report) -> dict:
        primary = report.primary_metric
        d = report.across_seeds.metrics[primary]
        released = report.metrics[primary]
        return {"n_items": report.n_items, "primary_metric": primary, "base": round(released.base, 4),
                "delta_per_seed": {s: round(v, 4) for s, v in d.per_seed.items()},
                "adapter_per_seed": {s: round(released.base + v, 4) for s, v in d.per_seed.items()},
                "mean_delta": round(d.mean, 4), "worst_delta": round(d.worst, 4), "spread": round(d.spread, 4),
                "across_seed_interval": [round(d.ci_low, 4), round(d.ci_high, 4)],
                "released_seed_interval": [round(released.ci_low, 4), round(released.ci_high, 4)]}

    selection = train.seeds
    write_result(args.out, {
        "machine": machine(),
        "seeds": args.seeds,
        "selection": {"rule": selection.rule, "chosen": selection.chosen,
                      "validation_loss": {str(r.seed): round(r.validation_loss, 4) for r in selection.runs},
                      "training_wall_s": {str(r.seed): r.wall_time_s for r in selection.runs}},
        "tiers": {tier: tier_figures(report) for tier, report in reports.items()},
        "interval_method": reports["heldout"].across_seeds.method,
        "timings_s": timings,
    })


if __name__ == "__main__":
    main()
