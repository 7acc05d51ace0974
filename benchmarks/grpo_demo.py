"""GRPO on the demo, measured: seconds per step, the reward curve, and what it did to the held-out tier.

    .venv/bin/python benchmarks/grpo_demo.py [--out benchmarks/results/grpo_demo.json]

Needs a completed `dvc repro` in the working tree (the builtin base, the validated splits and the
SFT adapter). In a temporary copy of those, it continues the SFT adapter with GRPO exactly as
`scripts/demo_sft_grpo.sh` does (params.yaml's train.grpo: json_valid 0.5 + field_accuracy 1.0,
40 steps of 8 prompts x 4 samples), then runs the held-out tier, which compares the adapter with
the base and with the SFT adapter it started from. The per-step time is training wall time over
optimizer steps, with the validation-reward checkpoints (every train.checkpoint_steps) included.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import yaml

from common import machine, out_path, write_result

REPO = Path(__file__).resolve().parents[1]


def grpo_project(root: Path) -> None:
    """The working tree's base, splits and SFT adapter, with params.yaml set for SFT -> GRPO."""
    for folder in ("artifacts/base", "artifacts/data", "eval_suites"):
        shutil.copytree(REPO / folder, root / folder)
    shutil.copytree(REPO / "artifacts/adapter", root / "sft_adapter")
    (root / "reports").mkdir()
    shutil.copy(REPO / "reports/base.json", root / "reports/base.json")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["train"].update(method="grpo", init_adapter="sft_adapter", logging_steps=1)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def main() -> None:
    out = out_path(__doc__, "benchmarks/results/grpo_demo.json")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        grpo_project(root)
        cwd = Path.cwd()
        os.chdir(root)
        try:
            from toolkit.config import load_params
            from toolkit.evals.tiers import run_tier
            from toolkit.train.run import run_train

            params = load_params()
            started = time.perf_counter()
            train = run_train(params)
            train_s = time.perf_counter() - started
            started = time.perf_counter()
            heldout = run_tier(params, "heldout")
            heldout_s = time.perf_counter() - started
        finally:
            os.chdir(cwd)
    primary = heldout.primary_metric
    figures = lambda deltas: {name: deltas[name].model_dump(include={"base", "adapter", "delta", "ci_low", "ci_high"})  # noqa: E731
                              for name in deltas}
    result = {
        "machine": machine(),
        "settings": {k: v for k, v in train.objective.items() if k not in ("final_eval",)},
        "optimizer_steps": train.optimizer_steps,
        "train_wall_s": round(train_s, 1),
        "s_per_step": round(train.wall_time_s / max(train.optimizer_steps, 1), 2),
        "best_step": train.best_step,
        "reward_curve": train.reward_history,
        "heldout": {"n_items": heldout.n_items, "primary_metric": primary,
                    "against_base": figures(heldout.metrics), "against_sft": figures(heldout.against_start or {}),
                    "reward_hacking": heldout.reward_hacking, "wall_s": round(heldout_s, 1)},
    }
    write_result(out, result)


if __name__ == "__main__":
    main()
