"""Wall time of the full default `dvc repro` and of a no-op `dvc repro`, in a fresh copy of the repo.

    .venv/bin/python benchmarks/pipeline_time.py [--out benchmarks/results/pipeline_time.json]

Writes a JSON result with per-stage times (from the report timestamps) and the machine it ran on.
"""

from __future__ import annotations

import json

from common import fresh_project, machine, out_path, timed, write_result


def main() -> None:
    out = out_path(__doc__, "benchmarks/results/pipeline_time.json")
    with fresh_project() as project:
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
        "machine": machine(),
    }
    write_result(out, result)


if __name__ == "__main__":
    main()
