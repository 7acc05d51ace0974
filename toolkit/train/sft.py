"""The train stage: supervised fine-tuning with a LoRA adapter through TRL's SFTTrainer + PEFT.

Loss is on assistant tokens only (the chat template carries generation markers). The adapter is
saved as safetensors with the tokenizer and chat template it was trained with, and a usage record
(device, wall time, tokens, parameters, loss curve) goes into reports/train.json.
"""

from __future__ import annotations

import tempfile
import time

from toolkit.config import Params
from toolkit.errors import ConfigError, DataError
from toolkit.files import read_jsonl, sha256_text
from toolkit.layout import ADAPTER_DIR, SPLIT_FILES, report_path
from toolkit.reports import BaseModelReport, TrainReport, digests, read_report, write_report
from toolkit.train.base_stage import load_base


def device_description() -> str:
    import torch

    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return f"{torch.cuda.device_count()}x {props.name} ({props.total_memory / 2**30:.0f} GiB)"
    return "cpu"


def run_train(params: Params) -> TrainReport:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    train_rows = list(read_jsonl(SPLIT_FILES["train"])) if SPLIT_FILES["train"].is_file() else []
    if not train_rows:
        raise DataError("no training records; run the validate stage first", file=str(SPLIT_FILES["train"]))
    if "messages" not in train_rows[0]:
        kind = "preference pairs" if "chosen" in train_rows[0] else "KTO feedback"
        raise ConfigError(f"train.method {params.train.method} needs SFT data (conversations), but the validated data "
                          f"is {kind}; preference objectives (DPO, KTO, ORPO) are not built yet",
                          file="params.yaml", key="train.method")
    validation_rows = list(read_jsonl(SPLIT_FILES["validation"]))
    base_report = read_report(report_path("base"), BaseModelReport)
    torch.manual_seed(params.seed)
    model, tokenizer = load_base(params, for_training=True)

    cfg = params.train
    on_gpu = torch.cuda.is_available()
    lora = LoraConfig(
        r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
        target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM",
    )
    with tempfile.TemporaryDirectory(prefix="toolkit-train-") as work_dir:
        args = SFTConfig(
            output_dir=work_dir,
            num_train_epochs=cfg.epochs,
            per_device_train_batch_size=cfg.batch_size,
            per_device_eval_batch_size=cfg.batch_size,
            gradient_accumulation_steps=cfg.gradient_accumulation_steps,
            learning_rate=cfg.learning_rate,
            warmup_steps=cfg.warmup_steps,
            max_length=cfg.max_length,
            assistant_only_loss=cfg.assistant_only_loss,
            logging_steps=cfg.logging_steps,
            save_strategy="no",
            report_to="none",
            seed=params.seed,
            data_seed=params.seed,
            use_cpu=not on_gpu,
            bf16=on_gpu and torch.cuda.is_bf16_supported(),
            gradient_checkpointing=on_gpu,
            dataloader_num_workers=0,
        )
        trainer = SFTTrainer(
            model=model, args=args, processing_class=tokenizer, peft_config=lora,
            train_dataset=Dataset.from_list(train_rows),
            eval_dataset=Dataset.from_list(validation_rows) if validation_rows else None,
        )
        started = time.perf_counter()
        result = trainer.train()
        wall = time.perf_counter() - started
        validation_loss = trainer.evaluate()["eval_loss"] if validation_rows else None

    peft_model = trainer.model
    peft_model.save_pretrained(ADAPTER_DIR, safe_serialization=True)
    tokenizer.save_pretrained(ADAPTER_DIR)
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in peft_model.parameters())
    losses = [{"step": h["step"], "loss": h["loss"]} for h in trainer.state.log_history if "loss" in h]
    tokens = int(next((h["num_tokens"] for h in reversed(trainer.state.log_history) if "num_tokens" in h), 0))

    report = TrainReport(
        params={"train": params.section("train"), "seed": params.seed},
        inputs=digests([SPLIT_FILES["train"], SPLIT_FILES["validation"], report_path("base")]),
        outputs=digests([ADAPTER_DIR]),
        method=cfg.method,
        adapter_type=cfg.adapter,
        base_model=base_report.model,
        trainable_parameters=trainable,
        total_parameters=total,
        train_records=len(train_rows),
        validation_records=len(validation_rows),
        epochs=cfg.epochs,
        optimizer_steps=result.global_step,
        tokens_seen=tokens,
        wall_time_s=round(wall, 2),
        tokens_per_s=round(tokens / wall, 1) if wall else 0.0,
        device=device_description(),
        first_loss=losses[0]["loss"] if losses else None,
        final_loss=losses[-1]["loss"] if losses else None,
        validation_loss=validation_loss,
        loss_history=losses,
        chat_template_sha256=sha256_text(tokenizer.chat_template) if tokenizer.chat_template else None,
    )
    write_report(report)
    return report
