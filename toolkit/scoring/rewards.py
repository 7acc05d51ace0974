"""GRPO rewards: the evaluation suites' metrics, scored on each sampled completion.

`train.grpo.rewards` lists metrics of the registry (toolkit.scoring.metrics: built-in names or a dotted
path to a custom one) with a weight and arguments. The reward a completion earns is the very
function the held-out tier later scores the adapter with, so what the model was trained towards
and what the gate reads cannot drift apart.

A record's reference is its last assistant turn (chat, ShareGPT, Alpaca and prompt/completion
layouts all end with it); the prompt is every turn before it. A record whose last turn is not the
assistant's text has no reference: it can still be a prompt, but not for a reward that needs one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.config import GrpoParams, RewardParams
from toolkit.errors import ConfigError, DataError
from toolkit.scoring.metrics import Metric, check_arguments, get_metric

SOURCE = "params.yaml"


@dataclass(frozen=True)
class Reward:
    """One weighted metric. Called by TRL's GRPOTrainer with the batch's prompts, completions and
    the dataset's other columns (the `reference` among them); returns one score per completion."""

    name: str
    metric: Metric
    weight: float
    args: dict[str, Any]

    @property
    def __name__(self) -> str:     # TRL names the reward's curves after its callable's __name__
        return self.name

    def score(self, completion: str, reference: str | None) -> float:
        return self.metric(completion, reference, **self.args)

    def __call__(self, prompts: list, completions: list, reference: list | None = None, **_: Any) -> list[float]:
        references = reference if reference is not None else [None] * len(completions)
        return [self.score(completion_text(c), r) for c, r in zip(completions, references, strict=True)]


def completion_text(completion: Any) -> str:
    """A sampled completion's text: conversational data gives [{"role": "assistant", "content": ...}]."""
    if isinstance(completion, list):
        return "".join(str(turn.get("content") or "") for turn in completion if isinstance(turn, dict))
    return str(completion)


def build_rewards(cfg: GrpoParams) -> list[Reward]:
    """The configured rewards, their metrics resolved and their arguments checked (exit 2 before any
    model is loaded)."""
    rewards, names = [], set()
    for index, spec in enumerate(cfg.rewards):
        key = f"train.grpo.rewards[{index}]"
        metric = get_metric(spec.metric, SOURCE, key=f"{key}.metric")
        args = _arguments(spec, key)
        check_arguments(metric, args, SOURCE, None, key=f"{key}.args")
        name = spec.name or metric.name.rsplit(".", 1)[-1].rsplit(":", 1)[-1]
        if name in names:
            raise ConfigError(f"two rewards are named {name!r}; give one a `name`", file=SOURCE, key=f"{key}.name")
        names.add(name)
        rewards.append(Reward(name, metric, spec.weight, args))
    return rewards


def _arguments(spec: RewardParams, key: str) -> dict[str, Any]:
    args = dict(spec.args)
    if "schema_file" in args:    # as in a suite file, but relative to the project root
        path = Path(str(args.pop("schema_file")))
        try:
            args["schema"] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"schema_file {path} not found", file=SOURCE, key=f"{key}.args.schema_file") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"schema_file {path} is not JSON: {exc}", file=SOURCE,
                              key=f"{key}.args.schema_file") from None
    return args


def reference_of(row: dict) -> str | None:
    """The reference answer of a validated conversation: its last turn, if that is the assistant's text."""
    last = (row.get("messages") or [{}])[-1]
    if last.get("role") != "assistant" or last.get("tool_calls") or not str(last.get("content") or "").strip():
        return None
    return last["content"]


def prompt_rows(rows: list[dict], rewards: list[Reward], source: str) -> list[dict]:
    """GRPO's dataset: {"prompt": the turns before the reference, "reference": ...} per record.
    Refuses (exit 2, naming the file, line, field and metric) a record without a reference when a
    reward needs one, and a reference a reward cannot score (field_accuracy on text that is not a
    JSON object, numeric_match on text without a number)."""
    prompts = []
    for line, row in enumerate(rows, 1):
        problem = reference_problem(row, rewards)
        if problem:
            raise DataError(problem[1], file=source, line=line, field=problem[0])
        reference = reference_of(row)
        turns = row["messages"][:-1] if reference is not None else row["messages"]
        prompts.append({"prompt": turns, "reference": reference})
    return prompts


def reference_problem(row: dict, rewards: list[Reward]) -> tuple[str, str] | None:
    """(field, message) when a validated record cannot serve a GRPO run with these rewards; the data
    stage reports it as it reports any other record problem, the train stage refuses the run."""
    if "messages" not in row:
        return "messages", ("GRPO trains on conversations or prompt/completion records (the last assistant "
                            "turn is the reference); this record is not one")
    needing = [reward for reward in rewards if reward.metric.needs_reference]
    reference = reference_of(row)
    if reference is None and needing:
        return "messages[-1]", (f"reward {needing[0].name} (metric {needing[0].metric.name}) needs a reference "
                                "answer, but this record's last turn is not an assistant answer; end each record "
                                "with the reference answer, or use rewards that need none (json_valid, "
                                "json_schema, regex, ...)")
    for reward in needing:
        try:
            reward.score(reference, reference)
        except ValueError as exc:
            return "messages[-1].content", f"reward {reward.name}: the reference cannot be scored: {exc}"
    return None
