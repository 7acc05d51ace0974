"""Wall time of the general-capability (lm-eval) tier with and without the base model's cached results.

    .venv/bin/python benchmarks/general_tier_time.py     # in a project where `dvc repro` has run

Runs `toolkit evaluate general` twice with a fresh cache folder: the first run evaluates base and
adapter, the second finds the base in the cache and evaluates only the adapter. Times are the
command's wall time (imports and dataset loading included) and the stage's own split from its report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        params = yaml.safe_load((REPO / "params.yaml").read_text())
        params["evaluate"]["general"]["cache_dir"] = str(Path(tmp) / "cache")
        params_file = Path(tmp) / "params.yaml"
        params_file.write_text(yaml.safe_dump(params, sort_keys=False))
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        rows = []
        for label in ("without base cache", "with base cache"):
            started = time.perf_counter()
            subprocess.run([str(Path(sys.executable).parent / "toolkit"), "evaluate", "general", "--params", str(params_file)],
                           cwd=REPO, env=env, check=True, capture_output=True)
            wall = time.perf_counter() - started
            generation = json.loads((REPO / "reports/eval_general.json").read_text())["generation"]
            rows.append({"run": label, "command_wall_s": round(wall, 1), "setup_s": generation["setup_wall_s"],
                         "base_s": generation["base_wall_s"],
                         "adapter_s": generation["adapter_wall_s"], "base_cached": generation["base_cached"]})
    out = REPO / "benchmarks/results/general_tier_time.json"
    out.write_text(json.dumps(rows, indent=2) + "\n")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
