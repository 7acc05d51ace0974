"""What the model card and the technical documentation say about how the adapter was trained.

Each statement is derived from `reports/train.json` alone (the objective, the adapter kind, what the
loss was computed on, the initial adapter of a two-stage run, the released checkpoint and training
seed), so the
documents cannot claim a method the run did not use. The card stage renders them; `toolkit verify`
derives them again from the bundled report and checks that both documents state them.
"""

from __future__ import annotations

from typing import Any

OBJECTIVES = {
    "sft": "supervised fine-tuning (SFT)",
    "dpo": "Direct Preference Optimization (DPO)",
    "ipo": "Identity Preference Optimization (IPO, the DPO trainer with the IPO loss)",
    "kto": "Kahneman-Tversky Optimization (KTO)",
    "orpo": "Odds Ratio Preference Optimization (ORPO)",
    "grpo": "Group Relative Policy Optimization (GRPO) with verifiable rewards",
}


def objective_key(train: dict[str, Any]) -> str:
    method = train.get("method", "sft")
    if method == "dpo" and (train.get("objective") or {}).get("loss_type") == "ipo":
        return "ipo"
    return method


def adapter_kind(train: dict[str, Any]) -> str:
    adapter = train.get("adapter") or {}
    kind = {"lora": "LoRA", "dora": "DoRA", "qlora": "QLoRA (4-bit NF4 base)"}.get(train.get("adapter_type", ""),
                                                                                   str(train.get("adapter_type")))
    return f"{kind} with rank-stabilised scaling (rsLoRA)" if adapter.get("rslora") else kind


def training_statements(train: dict[str, Any]) -> dict[str, str]:
    """Label -> sentence, in the order the documents show them."""
    adapter = train.get("adapter") or {}
    best = train.get("best_step")
    watched = "highest validation reward" if train.get("method") == "grpo" else "lowest validation loss"
    checkpoint = (f"the step-{best} checkpoint of {train.get('optimizer_steps')} ({watched})" if best
                  else f"the last step ({train.get('optimizer_steps')})")
    rewards = (train.get("objective") or {}).get("rewards")
    return {
        "Objective": OBJECTIVES.get(objective_key(train), str(train.get("method"))),
        **({"Rewards": rewards_statement(rewards)} if train.get("method") == "grpo" else {}),
        "Adapter": adapter_kind(train),
        "Loss computed on": train.get("loss_on") or "not recorded by this run's train report",
        "Initial adapter": f"continued from `{adapter['init_adapter']}`" if adapter.get("init_adapter")
                           else "none (a new adapter)",
        "Released checkpoint": checkpoint,
        # Only where the select stage ran: bundles released before training seeds existed stay verifiable.
        **({"Training seeds": seeds_statement(train["seeds"])} if train.get("seeds") else {}),
    }


def seeds_statement(seeds: dict[str, Any]) -> str:
    """How many training runs there were and which one is released, by which rule (the select stage)."""
    if seeds["count"] == 1:
        return f"one training run (seed {seeds['chosen']})"
    rule = ("the first of train.seeds" if seeds["rule"] == "first" else
            "the highest validation reward" if seeds.get("rule_field") == "validation_reward" else "the lowest validation loss")
    return (f"seed {seeds['chosen']} of {seeds['count']} training runs (seeds "
            f"{', '.join(str(s) for s in seeds['seeds'])}), chosen before evaluation by {rule}")


def rewards_statement(rewards: list[dict] | None) -> str:
    """The rewards a GRPO run was trained on, as its train report lists them."""
    if not rewards:
        return "not recorded by this run's train report"
    return "; ".join(f"{r['name']} (metric {r['metric']}, weight {r['weight']:g})" for r in rewards) + \
        " - the evaluation registry's metrics, scored on sampled completions against each record's reference"


def card_tags(train: dict[str, Any]) -> list[str]:
    """Hub tags for the method and adapter actually used."""
    adapter = train.get("adapter") or {}
    tags = [objective_key(train), train.get("adapter_type", "lora")]
    if adapter.get("rslora"):
        tags.append("rslora")
    return tags


def missing_statements(train: dict[str, Any], documents: dict[str, str]) -> list[str]:
    """Statements derived from the train report that a document does not state."""
    problems = []
    for label, sentence in training_statements(train).items():
        for name, text in documents.items():
            if f"{label}: {sentence}" not in text and f"| {label} | {sentence} |" not in text:
                problems.append(f"{name} does not state '{label}: {sentence}'")
    return problems
