"""What a training run used: devices, wall time, GPU-hours, peak memory and model FLOPs utilisation."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Devices:
    kind: str                 # cpu | cuda
    count: int
    name: str | None
    memory_gib: float | None

    def describe(self) -> str:
        return f"{self.count}x {self.name} ({self.memory_gib:.0f} GiB)" if self.kind == "cuda" else "cpu"


def devices() -> Devices:
    import torch

    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return Devices("cuda", torch.cuda.device_count(), props.name, round(props.total_memory / 2**30, 1))
    return Devices("cpu", 1, None, None)


def device_description() -> str:
    return devices().describe()


def model_flops_utilisation(total_parameters: int, tokens_per_s: float, used: Devices, world_size: int) -> float | None:
    """6 x parameters x tokens/s over the peak of the GPUs that ran (from the FinOps catalog); None on
    a CPU or a GPU the catalog does not know."""
    if used.kind != "cuda" or not tokens_per_s:
        return None
    from toolkit.finops.catalog import load_catalog

    found = load_catalog(None).gpu_for_device(used.describe())
    if not found or not found[1].peak_tflops:
        return None
    return round(6 * total_parameters * tokens_per_s / (found[1].peak_tflops * 1e12 * max(world_size, 1)), 4)
