"""Wall time of the full default `dvc repro` and of a no-op `dvc repro`, in a fresh copy of the repo.

    .venv/bin/python benchmarks/pipeline_time.py [--out benchmarks/results/pipeline_time.json]

Writes a JSON result with per-stage times (from the report timestamps) and the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import copy_project, run_in  # noqa: E402  (the tests' own copy helper)


def timed(project: Path, *args: str) -> tuple[float, str]:
    started = time.perf_counter()
    result = run_in(project, *args, check=True)
    return time.perf_counter() - started, result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="benchmarks/results/pipeline_time.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="toolkit-bench-") as tmp:
        project = copy_project(Path(tmp))
        full, log = timed(project, "dvc", "repro")
        noop, noop_log = timed(project, "dvc", "repro")
        assert "Running stage" not in noop_log, "the second repro re-ran a stage"
        reports = {name: json.loads((project / "reports" / f"{name}.json").read_text())
                   for name in ("base", "train", "eval_heldout", "gate")}
    result = {
        "full_repro_s": round(full, 1),
        "noop_repro_s": round(noop, 2),
        "pretrain_s": round(reports["base"]["pretraining"]["wall_time_s"], 1),
        "train_s": reports["train"]["wall_time_s"],
        "train_tokens_per_s": reports["train"]["tokens_per_s"],
        "heldout_items": reports["eval_heldout"]["n_items"],
        "gate_passed": reports["gate"]["passed"],
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
