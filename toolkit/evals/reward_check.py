"""Reward hacking: a GRPO run's reward rose while a held-out metric that is not part of the reward fell.

The held-out tier compares the adapter with the policy GRPO started from (the initial adapter of an
SFT -> GRPO run, else the base) on every metric of the suite. A metric the reward does not score that
fell, with its whole confidence interval below zero, while the trained reward rose, is the signature
of a policy that learnt the reward rather than the task; the default policy warns on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from toolkit.reports import MetricDelta, TrainReport

START_SIDE = "start"


def starting_adapter(train: TrainReport | None) -> Path | None:
    """The adapter a GRPO run continued, whose outputs the held-out tier also generates; None when the
    run started from the base (the base's outputs are generated anyway) or was not GRPO."""
    if train is None or train.method != "grpo" or not train.adapter.get("init_adapter"):
        return None
    from toolkit.models import adapter_folder

    return adapter_folder(Path(train.adapter["init_adapter"]), "train.init_adapter")


def reward_hacking(train: TrainReport | None, suite, comparisons: dict[str, dict[str, MetricDelta]]) -> dict[str, Any] | None:
    """The check's record for the held-out report; None for a run that was not GRPO."""
    if train is None or train.method != "grpo":
        return None
    objective = train.objective
    rewarded = {reward["metric"] for reward in objective.get("rewards", [])}
    first, final = objective.get("first_reward"), objective.get("final_reward")
    side = START_SIDE if START_SIDE in comparisons else "base"
    unrewarded = {name: delta for name, delta in comparisons[side].items()
                  if name in suite.metrics and suite.metrics[name].metric.name not in rewarded}
    fallen = {name: {"start": round(d.base, 6), "adapter": round(d.adapter, 6), "delta": round(d.delta, 6),
                     "ci_low": round(d.ci_low, 6), "ci_high": round(d.ci_high, 6)}
              for name, d in unrewarded.items() if d.ci_high < 0}
    reward_rose = first is not None and final is not None and final > first
    return {"suspected": bool(reward_rose and fallen),
            "reward_first": first, "reward_final": final, "reward_rose": reward_rose,
            "rewarded_metrics": sorted(rewarded),
            "checked_metrics": sorted(unrewarded),
            "compared_with": (f"the initial adapter {train.adapter['init_adapter']}" if side == START_SIDE
                              else "the base model (the run started from it)"),
            "fallen_metrics": fallen}
