"""Device time: one rule for device-hours wherever it is counted (the train report's GPU-hours, the
cost report's priced hours), so the two can never disagree about a multi-GPU run."""

from __future__ import annotations

import re


def device_count(description: str) -> int:
    """The devices in a description such as '2x NVIDIA H100 80GB HBM3 (79 GiB)'; 1 for 'cpu'."""
    match = re.match(r"(\d+)x ", description)
    return int(match.group(1)) if match else 1


def device_hours(wall_s: float, description: str) -> float:
    """Wall time x every device held: what a provider bills for the run."""
    return wall_s / 3600 * device_count(description)
