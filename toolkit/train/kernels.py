"""Fused GPU kernels for training (`train.kernels`): Liger's RMSNorm, RoPE and SwiGLU.

`auto` uses them for SFT on CUDA when `liger-kernel` is installed (the optional extra `gpu`), never
on a CPU. They go in through transformers' own switch (`use_liger_kernel`); Liger's fused linear
cross-entropy stays off because TRL 1.16's SFTTrainer already computes the loss through its own
chunked LM head and refuses Liger's. Preference trainers get no Liger kernels here: TRL routes
`use_liger_kernel` to a different (Liger) loss for them, which this toolkit has not verified.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from toolkit.errors import ConfigError, UnsupportedHardwareError

LIGER_KERNELS = ["rms_norm", "rope", "swiglu"]


@dataclass(frozen=True)
class Kernels:
    liger: bool
    reason: str

    def as_dict(self) -> dict:
        return {"in_use": [f"liger:{k}" for k in LIGER_KERNELS] if self.liger else [], "reason": self.reason}

    def training_args(self) -> dict:
        if not self.liger:
            return {}
        return {"use_liger_kernel": True,
                "liger_kernel_config": {**{k: True for k in LIGER_KERNELS}, "fused_linear_cross_entropy": False}}


def liger_installed() -> bool:
    return importlib.util.find_spec("liger_kernel") is not None


def choose_kernels(setting: str, method: str, on_cuda: bool, installed: bool | None = None) -> Kernels:
    if setting == "none":
        return Kernels(False, "train.kernels is none")
    if not on_cuda:
        if setting == "liger":
            raise UnsupportedHardwareError("train.kernels is liger, whose Triton kernels need a CUDA GPU; this machine "
                                           "has none. Use kernels: auto (or none).")
        return Kernels(False, "no CUDA device: Liger's kernels are Triton GPU kernels")
    unusable = None
    if method != "sft":
        unusable = f"Liger kernels are used for SFT only (TRL's {method.upper()} trainer would switch to Liger's loss)"
    elif not (liger_installed() if installed is None else installed):
        unusable = "liger-kernel is not installed (pip install 'toolkit[gpu]')"
    if unusable is None:
        return Kernels(True, "CUDA and liger-kernel present")
    if setting == "liger":
        raise ConfigError(f"train.kernels is liger, but {unusable}", file="params.yaml", key="train.kernels")
    return Kernels(False, unusable)
