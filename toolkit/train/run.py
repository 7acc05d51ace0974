"""The train stage: validated data -> a PEFT adapter and a usage record, through TRL + PEFT.

One code path for every objective (SFT, DPO/IPO, KTO, ORPO) and adapter (LoRA, rsLoRA, DoRA,
QLoRA). The run checkpoints every `train.checkpoint_steps` optimizer steps into
.cache/train/<run key>/ and evaluates the validation loss there; a killed run started again with
the same settings and data resumes from the last complete checkpoint. Early stopping watches the
validation loss and the best checkpoint is the adapter written. A NaN/inf or spiking loss stops the
run with reports/train_diverged.json and no adapter. Runs unchanged under `accelerate launch`
(data-parallel); only the main process writes.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from toolkit import headline
from toolkit.config import Params
from toolkit.errors import ConfigError, DataError, TrainingDiverged
from toolkit.files import atomic_write_json, read_jsonl, remove_outputs, sha256_path, sha256_text
from toolkit.layout import SINGLE_RUN, SPLIT_FILES, TrainRun, report_path
from toolkit.reports import BaseModelReport, TrainReport, digests, read_report, write_report
from toolkit.train.adapters import lora_config, optimizer_name, quantization_config, record_base, require_hardware
from toolkit.train.callbacks import DivergenceGuard, LogLastStep, LossCurves, peak_memory_gb
from toolkit.train.metering import Devices, devices, model_flops_utilisation
from toolkit.train.objectives import DATA_KIND, KIND_WORDS, data_kind, loss_on, objective
from toolkit.train.kernels import Kernels, choose_kernels
from toolkit.train.packing import Packing, choose_packing
from toolkit.scoring.rewards import Reward, build_rewards, prompt_rows
from toolkit.usage import device_hours

CHECKPOINT_ROOT = Path(".cache/train")
METERING_FILE = "metering.json"
SEED_KEYS = {"seeds", "seed_selection"}   # read by the select stage, not by a training run


def run_train(params: Params, seed: int | None = None) -> TrainReport | None:
    """The report (None in a non-main data-parallel process). With `seed`, one seed of train.seeds
    into its own folders (layout.seed_run); without, the first seed into artifacts/adapter."""
    from toolkit.layout import seed_run

    if seed is None:
        return train_adapter(params.with_training_seed(params.train.seeds[0]))[0]
    # The pipeline's train@<seed> stages: train.seeds is not read, so adding a seed reruns no other seed.
    return train_adapter(params.with_training_seed(seed), seed_run(seed))[0]


def train_adapter(params: Params, run: TrainRun = SINGLE_RUN):
    """(report, the trained PeftModel in memory); (None, None) in a non-main process. `params.seed`
    seeds the run (initialisation, data order)."""
    import torch
    from transformers import EarlyStoppingCallback

    cfg = params.train
    require_hardware(cfg)   # before anything is loaded: QLoRA without CUDA is a clear exit 2
    kernels = choose_kernels(cfg.kernels, cfg.method, torch.cuda.is_available())   # likewise kernels: liger
    if int(os.environ.get("RANK", "0")) == 0:   # one process clears; the checkpoints to resume from stay
        continues_in_place = bool(cfg.init_adapter) and Path(cfg.init_adapter).resolve() == run.adapter.resolve()
        headline_file = (headline.path("train"),) if run == SINGLE_RUN else ()
        remove_outputs(run.report, *headline_file, run.diverged, *(() if continues_in_place else (run.adapter,)))
    rewards = build_rewards(cfg.grpo) if cfg.method == "grpo" else []   # a bad reward is exit 2 before any loading
    train_rows, validation_rows = _splits(cfg.method)
    if cfg.method == "grpo":   # prompts and references; a record the rewards cannot score is exit 2 here
        train_rows = prompt_rows(train_rows, rewards, str(SPLIT_FILES["train"]))
        validation_rows = prompt_rows(validation_rows[:cfg.grpo.eval_records or None], rewards,
                                      str(SPLIT_FILES["validation"]))
    base_report = read_report(report_path("base"), BaseModelReport)
    run_dir = CHECKPOINT_ROOT / run_key(params, base_report)
    resume_from = last_complete_checkpoint(run_dir) if cfg.resume else None
    if not cfg.resume and run_dir.exists():
        shutil.rmtree(run_dir)
    previous_wall = _read_metering(run_dir) if resume_from else 0.0

    torch.manual_seed(params.seed)
    model, tokenizer, peft_config = _model(params)
    used = devices()
    packing = choose_packing(cfg.packing, cfg.method, attention_implementation(model), cfg.max_length)
    chosen = objective(cfg, packing)
    has_validation = bool(validation_rows)
    # A GRPO loss hovers around zero and may be negative: a spike over its lowest value means nothing.
    guard = DivergenceGuard(0.0 if cfg.method == "grpo" else cfg.divergence_spike_factor)
    meter = _WallMeter(run_dir, previous_wall)
    callbacks: list[TrainerCallback] = [guard, meter, LossCurves(run.curves, resume_step=_step_of(resume_from)), LogLastStep()]
    if has_validation and cfg.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    inputs = {"train_dataset": _dataset(train_rows), "eval_dataset": _dataset(validation_rows) if has_validation else None}
    if cfg.method == "grpo":   # no collator: the trainer batches its own samples
        inputs["reward_funcs"] = rewards
    else:
        inputs["data_collator"] = packing.collator(tokenizer.pad_token_id if tokenizer.pad_token_id is not None
                                                   else tokenizer.eos_token_id)
    trainer = chosen.trainer_cls(
        model=model, args=_training_args(params, chosen, run_dir, has_validation, used.kind == "cuda", kernels),
        processing_class=tokenizer, peft_config=peft_config, callbacks=callbacks, **inputs)
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    wall = time.perf_counter() - started
    main_process = trainer.is_world_process_zero()
    if guard.reason:
        if main_process:
            _write_diverged(params, guard, trainer, run.diverged)
        raise TrainingDiverged(f"training stopped: {guard.reason}; no adapter was written "
                               f"(see {run.diverged}). Lower train.learning_rate or check the data.")
    trainer.accelerator.wait_for_everyone()
    if not main_process:
        return None, None   # the main process writes the adapter and the report

    peft_model = trainer.accelerator.unwrap_model(trainer.model)
    # A DPO/KTO run on a pre-trained adapter carries a frozen "ref" copy: only the trained one ships.
    peft_model.save_pretrained(run.adapter, safe_serialization=True, selected_adapters=["default"])
    tokenizer.save_pretrained(run.adapter)
    record_base(run.adapter, base_report, params.base.model)
    report = _report(params, run.adapter, FinishedRun(trainer, result, wall, meter, resume_from, used, base_report,
                                         len(train_rows), len(validation_rows), tokenizer, packing, kernels,
                                         rewards))
    write_report(report, run.report)
    shutil.rmtree(run_dir, ignore_errors=True)   # finished: a re-run starts afresh
    return report, peft_model


def attention_implementation(model) -> str:
    return getattr(model.config, "_attn_implementation", None) or "eager"


def _step_of(checkpoint: Path | None) -> int | None:
    return int(checkpoint.name.split("-")[-1]) if checkpoint else None


def _training_args(params: Params, chosen, run_dir: Path, has_validation: bool, on_gpu: bool, kernels: Kernels):
    """The objective's TRL config: the recipe from params.yaml, checkpoints for resume and the best
    model, and the device's precision."""
    import torch

    cfg = params.train
    settings = dict(
        output_dir=str(run_dir),
        num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_steps,
        max_length=cfg.max_length,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        logging_nan_inf_filter=False,   # a NaN loss must be seen (the divergence guard), not averaged away
        save_strategy="steps",
        save_steps=cfg.checkpoint_steps,
        save_total_limit=2,     # the best and the last (load_best_model_at_end never deletes the best)
        eval_strategy="steps" if has_validation else "no",
        eval_steps=cfg.checkpoint_steps,
        load_best_model_at_end=has_validation,
        metric_for_best_model=chosen.best_metric if has_validation else None,
        greater_is_better=chosen.greater_is_better if has_validation else None,
        report_to="none",
        seed=params.seed,
        data_seed=params.seed,
        use_cpu=not on_gpu,
        bf16=on_gpu and torch.cuda.is_bf16_supported(),
        gradient_checkpointing=cfg.gradient_checkpointing == "on" or (cfg.gradient_checkpointing == "auto" and on_gpu),
        optim=optimizer_name(cfg),
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=0,
        disable_tqdm=None,
        **kernels.training_args(),
    )
    settings.update(chosen.extra_config)
    for name in chosen.unsupported:
        settings.pop(name)
    return chosen.config_cls(**settings)


def _dataset(rows: list[dict]):
    """The rows as a datasets.Dataset. Tool-calling rows keep each turn and the tools as JSON: Arrow
    would otherwise merge the argument objects of different tools into one struct and every call
    would gain the other tools' arguments as nulls."""
    from datasets import Dataset, Features, Json, List

    if any("tools" in row or any("tool_calls" in m or m["role"] == "tool" for m in row.get("messages", ()))
           for row in rows):
        return Dataset.from_list([{"tools": None, **row} for row in rows],
                                 features=Features({"messages": List(Json()), "tools": Json()}))
    return Dataset.from_list(rows)


def _splits(method: str) -> tuple[list[dict], list[dict]]:
    train_file = SPLIT_FILES["train"]
    train_rows = list(read_jsonl(train_file)) if train_file.is_file() else []
    if not train_rows:
        raise DataError("no training records; run the validate stage first", file=str(train_file))
    kind = data_kind(train_rows[0])
    if DATA_KIND[method] != kind:
        suitable = [m for m, k in DATA_KIND.items() if k == kind]
        raise ConfigError(f"train.method {method} needs {KIND_WORDS[DATA_KIND[method]]}, but the validated data is "
                          f"{KIND_WORDS[kind]}; use method {' or '.join(suitable)}, or point data.path at "
                          f"{KIND_WORDS[DATA_KIND[method]]}", file="params.yaml", key="train.method")
    validation_file = SPLIT_FILES["validation"]
    validation_rows = list(read_jsonl(validation_file)) if validation_file.is_file() else []
    return train_rows, validation_rows


def _model(params: Params):
    """(model, tokenizer, peft_config): a fresh adapter from the config, or `init_adapter` to continue."""
    from peft import PeftModel, prepare_model_for_kbit_training

    from toolkit.models import adapter_folder, load_base

    cfg = params.train
    init_adapter = adapter_folder(cfg.init_adapter, "train.init_adapter") if cfg.init_adapter else None
    quantization = quantization_config(cfg)
    model, tokenizer = load_base(params, for_training=True, quantization_config=quantization)
    if quantization is not None:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing != "off")
    if init_adapter is None:
        return model, tokenizer, lora_config(cfg)
    return PeftModel.from_pretrained(model, init_adapter, is_trainable=True), tokenizer, None


def run_settings(params: Params) -> dict[str, Any]:
    """The train section one run is trained with: all of it but the list of seeds and the rule that
    picks one (params.seed is this run's seed), so adding a seed leaves the other seeds' runs as they are."""
    return params.train.model_dump(mode="json", exclude=SEED_KEYS)


def run_key(params: Params, base_report: BaseModelReport) -> str:
    """Checkpoints are only resumed by a run with the same settings, data and base."""
    train = run_settings(params)
    for volatile in ("resume", "logging_steps"):
        train.pop(volatile)
    key = {"train": train, "seed": params.seed, "base": base_report.outputs,
           "data": {name: sha256_path(SPLIT_FILES[name]) for name in ("train", "validation")
                    if SPLIT_FILES[name].is_file()},
           "init_adapter": sha256_path(params.train.init_adapter) if params.train.init_adapter else None}
    return sha256_text(json.dumps(key, sort_keys=True))[:16]


def last_complete_checkpoint(run_dir: Path) -> Path | None:
    """The newest checkpoint with its trainer state and optimizer written; a newer, half-written one
    (the run was killed while saving) is removed."""
    if not run_dir.is_dir():
        return None
    checkpoints = sorted((p for p in run_dir.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
                         key=lambda p: int(p.name.split("-")[-1]), reverse=True)
    for checkpoint in checkpoints:
        if _trainer_state_written(checkpoint) and (checkpoint / "optimizer.pt").is_file():
            return checkpoint
        shutil.rmtree(checkpoint, ignore_errors=True)
    return None


def _trainer_state_written(checkpoint: Path) -> bool:
    """transformers writes the trainer state last and not atomically: a kill while it is written
    leaves an empty or cut file, so the checkpoint counts only when the state parses."""
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(state, dict) and "global_step" in state


class _WallMeter(TrainerCallback):
    """Wall time of this process, plus that of interrupted runs up to their last checkpoint (kept
    beside the checkpoints), for GPU-hours; and the step and token count a resumed run started at."""

    def __init__(self, run_dir: Path, previous_wall: float):
        self.run_dir, self.previous = run_dir, previous_wall
        self.started = time.perf_counter()
        self.tokens_at_start: int | None = None
        self.resumed_step: int | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.tokens_at_start = int(state.num_input_tokens_seen or 0)
        self.resumed_step = state.global_step or None

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            atomic_write_json(self.run_dir / METERING_FILE, {"wall_s": self.total_wall()})

    def total_wall(self) -> float:
        return round(self.previous + time.perf_counter() - self.started, 2)


def _read_metering(run_dir: Path) -> float:
    path = run_dir / METERING_FILE
    return float(json.loads(path.read_text())["wall_s"]) if path.is_file() else 0.0


def _write_diverged(params: Params, guard: DivergenceGuard, trainer, path: Path) -> None:
    losses = [{"step": h["step"], "loss": h["loss"]} for h in trainer.state.log_history if "loss" in h]
    atomic_write_json(path, {"stage": "train", "diverged": True, "reason": guard.reason,
                                        "step": guard.step, "params": {"train": run_settings(params)},
                                        "loss_history": [{k: (v if v == v else "nan") for k, v in row.items()}
                                                         for row in losses]})


@dataclass(frozen=True)
class FinishedRun:
    """What a finished training run leaves for its report."""
    trainer: Any
    result: Any              # transformers' TrainOutput
    wall_s: float            # this process's training time (a resumed run's earlier time is in the meter)
    meter: _WallMeter
    resume_from: Path | None
    used: Devices
    base_report: BaseModelReport
    train_records: int
    validation_records: int
    tokenizer: Any
    packing: Packing
    kernels: Kernels
    rewards: list[Reward]


def _report(params: Params, adapter_dir: Path, run: FinishedRun) -> TrainReport:
    cfg, trainer, result, wall, meter, used = params.train, run.trainer, run.result, run.wall_s, run.meter, run.used
    peft_model = trainer.accelerator.unwrap_model(trainer.model)
    trainable = sum(p.numel() for n, p in peft_model.named_parameters() if p.requires_grad)
    total = sum(p.numel() for n, p in peft_model.named_parameters() if ".ref." not in n)
    history = trainer.state.log_history
    losses = [{"step": h["step"], "loss": h["loss"]} for h in history if "loss" in h]
    evals = [h for h in history if "eval_loss" in h]
    tokens = int(trainer.state.num_input_tokens_seen or 0) or int(
        next((h["num_tokens"] for h in reversed(history) if "num_tokens" in h), 0))
    tokens_this_run = tokens - (meter.tokens_at_start or 0)
    tokens_per_s = round(tokens_this_run / wall, 1) if wall else 0.0
    world_size = trainer.args.world_size
    best = trainer.state.best_model_checkpoint
    finals = {k: v for k, v in (evals[-1] if evals else {}).items() if k.startswith("eval_") and "runtime" not in k
              and "per_second" not in k}
    previous_wall = meter.previous if run.resume_from else 0.0
    gpu_count = used.count if used.kind == "cuda" else 0
    tokenizer, base_report, n_train, n_validation = run.tokenizer, run.base_report, run.train_records, run.validation_records
    grpo = cfg.method == "grpo"
    return TrainReport(
        params={"train": run_settings(params), "seed": params.seed},
        inputs=digests([SPLIT_FILES["train"], SPLIT_FILES["validation"], report_path("base")]
                       + ([Path(cfg.init_adapter)] if cfg.init_adapter else [])),
        outputs=digests([adapter_dir]),
        method=cfg.method,
        adapter_type=cfg.adapter,
        base_model=base_report.model,
        trainable_parameters=trainable,
        total_parameters=total,
        train_records=n_train,
        validation_records=n_validation,
        epochs=round(trainer.state.epoch or 0.0, 3) if grpo else cfg.epochs,   # GRPO runs by steps
        optimizer_steps=result.global_step,
        tokens_seen=tokens,
        wall_time_s=round(wall, 2),
        tokens_per_s=tokens_per_s,
        device=used.describe(),
        first_loss=losses[0]["loss"] if losses else None,
        final_loss=losses[-1]["loss"] if losses else None,
        validation_loss=None if grpo else trainer.state.best_metric if best else (evals[-1]["eval_loss"] if evals else None),
        loss_history=losses,
        chat_template_sha256=sha256_text(tokenizer.chat_template) if tokenizer.chat_template else None,
        device_kind=used.kind,
        device_count=used.count,
        device_memory_gib=used.memory_gib,
        world_size=world_size,
        gpu_hours=round(device_hours(wall + previous_wall, used.describe()), 4) if gpu_count else 0.0,
        peak_memory_gb=peak_memory_gb(),
        mfu=model_flops_utilisation(total, tokens_per_s, used, world_size),
        adapter={"type": cfg.adapter, "r": cfg.lora.r, "alpha": cfg.lora.alpha, "rslora": cfg.lora.rslora,
                 "dropout": 0.0 if getattr(trainer.args, "disable_dropout", False) else cfg.lora.dropout,
                 "dora": cfg.adapter == "dora", "target_modules": cfg.lora.target_modules,
                 "quantization": "nf4 double-quant, bf16 compute" if cfg.adapter == "qlora" else None,
                 "init_adapter": cfg.init_adapter},
        reward_history=reward_history(history, run.rewards),
        objective={"method": cfg.method, **({"beta": cfg.preference.beta} if cfg.method in ("dpo", "kto", "orpo") else {}),
                   **(grpo_objective(cfg, history, run.rewards, trainer.state.best_metric if best else None) if grpo else {}),
                   **({"loss_type": cfg.preference.loss_type} if cfg.method == "dpo" else {}),
                   "final_eval": {k: round(v, 6) for k, v in finals.items() if isinstance(v, (int, float))},
                   "optimizer": trainer.args.optim.value if hasattr(trainer.args.optim, "value") else str(trainer.args.optim)},
        loss_on=loss_on(cfg.method, trainer.args),
        packing=run.packing.as_dict(),
        kernels=run.kernels.as_dict(),
        resumed_from_step=meter.resumed_step,
        previous_wall_time_s=previous_wall,
        checkpoint_steps=cfg.checkpoint_steps,
        best_step=int(best.rsplit("-", 1)[-1]) if best else None,
        best_validation_loss=trainer.state.best_metric if best and not grpo else None,
        stopped_early=result.global_step < trainer.state.max_steps,
    )


def reward_history(history: list[dict], rewards: list[Reward]) -> list[dict]:
    """Per logged GRPO step: the mean weighted reward, each reward's mean, the KL to the reference and
    the mean completion length (empty for the other methods)."""
    rows = []
    for h in history:
        if "reward" not in h or "step" not in h:
            continue
        row = {"step": h["step"], "reward": round(h["reward"], 6)}
        row.update({reward.name: round(h[f"rewards/{reward.name}/mean"], 6) for reward in rewards
                    if f"rewards/{reward.name}/mean" in h})
        row.update({name: round(h[key], 6) for key, name in (("kl", "kl"), ("completions/mean_length", "completion_length"))
                    if isinstance(h.get(key), (int, float))})
        rows.append(row)
    return rows


def grpo_objective(cfg, history: list[dict], rewards: list[Reward], best_reward: float | None) -> dict:
    """What a GRPO run optimised and how its reward moved: the card and the reward-hacking check read this."""
    grpo, rows = cfg.grpo, reward_history(history, rewards)
    window = max(1, len(rows) // 4)   # means over the first and last quarter of the logged steps
    mean = lambda part: round(sum(r["reward"] for r in part) / len(part), 6) if part else None  # noqa: E731
    return {"rewards": [{"name": r.name, "metric": r.metric.name, "weight": r.weight,
                         "args": {k: v for k, v in r.args.items() if k != "schema"} | ({"schema": "(inline JSON schema)"}
                                                                                        if "schema" in r.args else {})}
                        for r in rewards],
            "num_generations": grpo.num_generations, "max_completion_length": grpo.max_completion_length,
            "temperature": grpo.temperature, "beta": grpo.beta, "learning_rate": grpo.learning_rate,
            "max_steps": grpo.max_steps, "prompts_per_step": grpo.prompts_per_step,
            "first_reward": mean(rows[:window]), "final_reward": mean(rows[-window:]),
            "best_validation_reward": round(best_reward, 6) if best_reward is not None else None}
