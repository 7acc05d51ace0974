"""Training throughput: `toolkit train` against a plain TRL script on the same model, data and recipe.

    .venv/bin/python benchmarks/train_throughput.py [--epochs 1] [--steps N] [--data demo|varied]

--data demo trains on the demo's validated train split (lengths alike: 149-177 tokens); --data
varied on 2,000 untemplated chat records with a wide, long-tailed length distribution
(toolkit.data.synth_varied: median 8 words a turn, 1-4 exchanges; truncated at the builtin base's
256-token context), where much of a padded batch is padding. Both sides use assistant-only loss
(the toolkit's default). After training, both adapters' loss on the same validation records is
computed the same way (padded batches, outside the timed part). The toolkit is run three times:
as configured (validation loss and a checkpoint every 50 steps), training steps only
(checkpoint_steps past the end), and training steps only with packing: none.

It trains on the base in artifacts/base (on a GPU it uses bf16, paged AdamW and checkpointing as
the baseline recipe says). The issue's GPU check on a Llama-3.1-8B-shaped model was not run: no
GPU was lent (see docs/benchmarks.md).

The plain baseline is issue #4's: SFTTrainer with LoRA r=16, alpha=16, dropout 0.05 on the q/k/v/o/
gate/up/down projections, per-device batch 4, no packing; on a GPU also paged AdamW 32-bit, gradient
checkpointing and bf16. The toolkit side runs `toolkit.train.run.train_adapter` with the same
recipe (and its checkpointing, validation, metering and dvclive curves on). Both count non-padding
input tokens per second of training wall time. Needs a completed pipeline in the working tree (the
base and the validated splits).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def plain_trl(base: Path, train_file: Path, validation_rows: list[dict], epochs: float, on_gpu: bool, max_steps: int,
              max_length: int) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16 if on_gpu else torch.float32)
    rows = [json.loads(line) for line in train_file.read_text().splitlines()]
    with tempfile.TemporaryDirectory() as out:
        args = SFTConfig(output_dir=out, per_device_train_batch_size=4, num_train_epochs=epochs, max_steps=max_steps,
                         learning_rate=2e-4, logging_steps=10, save_strategy="no", report_to="none",
                         optim="paged_adamw_32bit" if on_gpu else "adamw_torch", gradient_checkpointing=on_gpu,
                         bf16=on_gpu, use_cpu=not on_gpu, packing=False, max_length=max_length,
                         assistant_only_loss=True,   # as the toolkit's default: both learn the same tokens
                         include_num_input_tokens_seen="non_padding")
        trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                             peft_config=LoraConfig(r=16, lora_alpha=16, lora_dropout=0.05, target_modules=TARGETS,
                                                    task_type="CAUSAL_LM"))
        started = time.perf_counter()
        result = trainer.train()
        wall = time.perf_counter() - started
        tokens = int(trainer.state.num_input_tokens_seen)
        loss = validation_loss(trainer.model, tokenizer, validation_rows, max_length, on_gpu)
    return {"steps": result.global_step, "tokens": tokens, "wall_s": round(wall, 2), "tokens_per_s": round(tokens / wall, 1),
            "validation_loss": loss}


def validation_loss(model, tokenizer, rows: list[dict], max_length: int, on_gpu: bool) -> float:
    """The adapter's loss on the validation records: padded batches of 4, assistant tokens, no dropout."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    with tempfile.TemporaryDirectory() as out:
        args = SFTConfig(output_dir=out, per_device_eval_batch_size=4, report_to="none", use_cpu=not on_gpu,
                         bf16=on_gpu, max_length=max_length, assistant_only_loss=True)
        data = Dataset.from_list(rows)
        evaluator = SFTTrainer(model=model, args=args, processing_class=tokenizer, train_dataset=data, eval_dataset=data)
        return round(evaluator.evaluate()["eval_loss"], 5)


def toolkit_run(project: Path, base: Path, epochs: float, max_steps: int, max_length: int, validation_rows,
                validation_passes: bool = True, packing: str = "auto") -> dict:
    """`toolkit train` with the plain recipe; validation_passes=False sets checkpoint_steps past the end
    of the run (no validation loss or checkpoint during training: the training steps alone)."""
    from toolkit.config import Params
    from toolkit.train.base_stage import run_base
    from toolkit.train.run import train_adapter

    params = Params.model_validate({"base": {"model": str(base)}, "train": {
        "epochs": epochs, "batch_size": 4, "learning_rate": 2e-4, "max_length": max_length, "warmup_steps": 0,
        "lora": {"r": 16, "alpha": 16, "dropout": 0.05, "target_modules": TARGETS}, "packing": packing,
        "early_stopping_patience": None,   # the same number of steps as the plain run
        "checkpoint_steps": (max(max_steps // 4, 10) if max_steps > 0 else 50) if validation_passes else 10**9}})
    cwd = Path.cwd()
    os.chdir(project)
    try:
        run_base(params, progress=False)
        report, model = train_adapter(params)
        from transformers import AutoTokenizer

        loss = validation_loss(model, AutoTokenizer.from_pretrained(base), validation_rows, max_length,
                               report.device_kind == "cuda")
    finally:
        os.chdir(cwd)
    return {"steps": report.optimizer_steps, "tokens": report.tokens_seen, "wall_s": report.wall_time_s,
            "tokens_per_s": report.tokens_per_s, "peak_memory_gb": report.peak_memory_gb, "mfu": report.mfu,
            "packing": report.packing, "kernels": report.kernels, "validation_loss": loss}


def write_varied_splits(data: Path, records: int) -> None:
    from toolkit.data.synth_varied import varied_chat_records

    rows = varied_chat_records(records + records // 10, seed=7, median_words=8)   # 1-4 exchanges: 10-256+ tokens
    data.mkdir(parents=True, exist_ok=True)
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:records]))
    (data / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[records:]))


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=-1, help="max optimizer steps (-1: the epochs)")
    parser.add_argument("--data", choices=["demo", "varied"], default="demo")
    parser.add_argument("--records", type=int, default=2000, help="--data varied: training records")
    parser.add_argument("--out", default=None, help="default: benchmarks/results/train_throughput[_varied].json")
    args = parser.parse_args()
    out = args.out or f"benchmarks/results/train_throughput{'_varied' if args.data == 'varied' else ''}.json"
    on_gpu = torch.cuda.is_available()
    base = REPO / "artifacts/base"
    max_length = 2048 if args.data == "demo" else 256   # varied: the builtin base's context
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        if args.data == "demo":
            shutil.copytree(REPO / "artifacts/data", project / "artifacts/data")
        else:
            write_varied_splits(project / "artifacts/data", args.records)
        train_file = project / "artifacts/data/train.jsonl"
        validation_rows = [json.loads(line) for line in (project / "artifacts/data/validation.jsonl").read_text().splitlines()]
        baseline = plain_trl(base, train_file, validation_rows, args.epochs, on_gpu, args.steps, max_length)
        ours = toolkit_run(project, base, args.epochs, args.steps, max_length, validation_rows)
        steps_only = toolkit_run(project, base, args.epochs, args.steps, max_length, validation_rows, False)
        padded_steps_only = toolkit_run(project, base, args.epochs, args.steps, max_length, validation_rows, False, "none")
    device = torch.cuda.get_device_name(0) if on_gpu else f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"
    result = {"device": device, "model": "builtin tiny Llama (0.98M)", "torch": torch.__version__, "data": args.data,
              "plain_trl": baseline, "toolkit": ours, "ratio": round(ours["tokens_per_s"] / baseline["tokens_per_s"], 3),
              "toolkit_training_steps_only": steps_only,
              "ratio_training_steps_only": round(steps_only["tokens_per_s"] / baseline["tokens_per_s"], 3),
              "toolkit_padded_training_steps_only": padded_steps_only,
              "ratio_padded_training_steps_only": round(padded_steps_only["tokens_per_s"] / baseline["tokens_per_s"], 3),
              "command": "python benchmarks/train_throughput.py " + " ".join(sys.argv[1:])}
    print(json.dumps(result, indent=2))
    (REPO / out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
