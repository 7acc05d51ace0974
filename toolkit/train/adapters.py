"""PEFT adapter and quantization settings from params.yaml: LoRA, rsLoRA, DoRA and QLoRA.

QLoRA quantizes the frozen base to 4-bit NF4 with double quantization and bf16 compute through
bitsandbytes, which needs CUDA: on a machine without it the request stops at once (exit 2), before
any model or data is loaded.
"""

from __future__ import annotations

from toolkit.config import TrainParams
from toolkit.errors import UnsupportedHardwareError


def require_hardware(cfg: TrainParams) -> None:
    import torch

    if cfg.adapter == "qlora" and not torch.cuda.is_available():
        raise UnsupportedHardwareError(
            "train.adapter is qlora, which quantizes the base model to 4 bits with bitsandbytes and needs a CUDA GPU; "
            "this machine has none. Use adapter: lora (or dora) here, or run on a GPU machine.")


def lora_config(cfg: TrainParams):
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
        target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM",
        use_rslora=cfg.lora.rslora,           # alpha / sqrt(r) scaling: stable at high ranks
        use_dora=cfg.adapter == "dora",       # weight-decomposed LoRA (magnitude + direction)
    )


def quantization_config(cfg: TrainParams):
    """The BitsAndBytesConfig for QLoRA (all three NF4 settings: bitsandbytes' defaults are fp4,
    fp32 compute and no double quantization), or None."""
    if cfg.adapter != "qlora":
        return None
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16)


def optimizer_name(cfg: TrainParams) -> str:
    """Paged 8-bit AdamW where bitsandbytes can run it (CUDA); TRL's default (fused AdamW) otherwise."""
    import torch

    if cfg.optimizer != "auto":
        return cfg.optimizer
    return "paged_adamw_8bit" if torch.cuda.is_available() else "adamw_torch_fused"


def base_reference(base_report, base_model_param: str) -> tuple[str, str | None]:
    """(base_model_name_or_path, revision) for adapter_config.json, so the adapter names its base
    anywhere it is copied: the Hub id at the exact commit downloaded; the user's own folder as they
    wrote it; for the builtin, its name with the hash of its files (it exists on no Hub)."""
    from pathlib import Path

    from toolkit.files import sha256_path

    if base_report.source == "hub":
        return base_report.model, Path(base_report.model_path).name   # the snapshot folder is the commit
    if base_report.source == "local":
        return base_model_param, None
    return f"{base_report.model}@sha256:{sha256_path(base_report.model_path)}", None


def record_base(adapter_dir, base_report, base_model_param: str) -> None:
    """Rewrite the saved adapter_config.json's base reference (PEFT writes the path it loaded from,
    e.g. artifacts/base or a cache folder, which means nothing on another machine), with its module
    list in a stable order."""
    import json
    from pathlib import Path

    from toolkit.files import atomic_write_json

    path = Path(adapter_dir) / "adapter_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"], config["revision"] = base_reference(base_report, base_model_param)
    # PEFT writes target_modules from a set, in an order that changes with each process's hash seed:
    # sorted, the same training gives a byte-identical adapter folder (and the same hash on the card).
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
    atomic_write_json(path, config)
