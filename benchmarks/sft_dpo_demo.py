"""The demo's SFT -> DPO variant, measured: `dvc repro` (SFT), then `bash scripts/demo_sft_dpo.sh`
(release the SFT adapter, DPO on it as a DVC experiment), in a fresh copy of the repository.

    .venv/bin/python benchmarks/sft_dpo_demo.py [--out benchmarks/results/sft_dpo_demo.json]

Besides the run's own reports (DPO training, held-out preference accuracy and margin base vs
SFT+DPO, canary against the SFT release, general capability, gate), it scores the released SFT
adapter on the same held-out pairs, so the table can say what DPO added on top of SFT.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from common import fresh_project, machine, out_path, timed, write_result


def sft_preference_accuracy(project: Path, bundle: str) -> dict:
    """The SFT release's preference accuracy and mean margin on the DPO run's held-out pairs."""
    cwd = Path.cwd()
    os.chdir(project)
    try:
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from toolkit.evals.preference import preference_scores
        from toolkit.evals.suites import load_suite

        tokenizer = AutoTokenizer.from_pretrained("artifacts/base")
        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained("artifacts/base"), f"{bundle}/adapter")
        items = load_suite("heldout").load_items()
        scores = preference_scores(model, tokenizer, items, batch_size=16)   # "adapter": the SFT release
    finally:
        os.chdir(cwd)
    accuracy = [row["adapter"] for row in scores["preference_accuracy"]]
    margin = [row["adapter"] for row in scores["logprob_margin"]]
    return {"n": len(accuracy), "preference_accuracy": round(sum(accuracy) / len(accuracy), 4),
            "logprob_margin": round(sum(margin) / len(margin), 3)}


def main() -> None:
    out = out_path(__doc__, "benchmarks/results/sft_dpo_demo.json")
    with fresh_project() as project:
        sft_s, _ = timed(project, "dvc", "repro")
        dpo_s, variant = timed(project, "bash", "scripts/demo_sft_dpo.sh")
        report = {name: json.loads((project / "reports" / f"{name}.json").read_text())
                  for name in ("train", "eval_heldout", "eval_canary", "eval_general", "gate")}
        bundle = report["train"]["adapter"]["init_adapter"]
        sft = sft_preference_accuracy(project, bundle)
    heldout, canary = report["eval_heldout"], report["eval_canary"]
    primary = canary["primary_metric"]
    result = {
        "sft_repro_s": round(sft_s, 1),
        "dpo_experiment_s": round(dpo_s, 1),
        "dpo_train": {key: report["train"][key] for key in ("optimizer_steps", "first_loss", "final_loss",
                                                             "wall_time_s", "tokens_per_s")},
        "heldout_pairs": heldout["n_items"],
        "preference_accuracy": heldout["metrics"]["preference_accuracy"],
        "logprob_margin": heldout["metrics"]["logprob_margin"],
        "sft_only_on_the_same_pairs": sft,
        "heldout_generation_field_accuracy": heldout["metrics"]["field_accuracy"],
        "canary": {"metric": primary, "adapter": canary["metrics"][primary]["adapter"],
                   "sft_release": (canary.get("against_previous") or {}).get(primary, {}).get("base")},
        "general_accuracy_delta": report["eval_general"]["metrics"]["accuracy"]["delta"],
        "gate_passed": report["gate"]["passed"],
        "experiment": variant.strip().splitlines()[0],
        "machine": machine(),
    }
    write_result(out, result)


if __name__ == "__main__":
    main()
