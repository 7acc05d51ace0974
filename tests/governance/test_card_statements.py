"""The card and the technical documentation state how the adapter was trained as its own train report
says: objective, adapter kind, what the loss was computed on, the initial adapter, the checkpoint.
Each case is a real (tiny) training run; its report is rendered into a completed pipeline's card."""

import json
import os
import shutil

import pytest

from training_runs import kto_rows, make_project, preference_rows, sft_rows, train_in

CASES = {
    "sft": dict(rows=sft_rows(8)),
    "sft-all-tokens-dora": dict(rows=sft_rows(8), adapter="dora", assistant_only_loss=False),
    "dpo-rslora": dict(rows=preference_rows(8), method="dpo", lora={"r": 4, "alpha": 8, "rslora": True}),
    "ipo": dict(rows=preference_rows(8), method="dpo", preference={"loss_type": "ipo"}),
    "kto": dict(rows=kto_rows(8), method="kto"),
    "orpo": dict(rows=preference_rows(8), method="orpo"),
    "grpo": dict(rows=sft_rows(8), method="grpo", grpo={"rewards": [{"metric": "json_valid"}], "max_steps": 2,
                                                          "prompts_per_step": 2, "num_generations": 2,
                                                          "max_completion_length": 8}),
}
OBJECTIVE = {"sft": "supervised fine-tuning", "sft-all-tokens-dora": "supervised fine-tuning",
             "dpo-rslora": "Direct Preference Optimization", "ipo": "Identity Preference Optimization",
             "kto": "Kahneman-Tversky Optimization", "orpo": "Odds Ratio Preference Optimization",
             "grpo": "Group Relative Policy Optimization"}
TAG = {"sft": "sft", "sft-all-tokens-dora": "sft", "dpo-rslora": "dpo", "ipo": "ipo", "kto": "kto", "orpo": "orpo", "grpo": "grpo"}


@pytest.mark.e2e
@pytest.mark.parametrize("case", list(CASES))
def test_card_states_the_method_of_its_train_report(case, tmp_path, tiny_base, pipeline_copy):
    from toolkit.config import load_params
    from toolkit.governance.card import run_card
    from toolkit.governance.statements import missing_statements

    settings = dict(CASES[case])
    rows = settings.pop("rows")
    report, _ = train_in(tmp_path, make_project(tmp_path, tiny_base, rows, epochs=1, **settings))
    shutil.copy(tmp_path / "reports/train.json", pipeline_copy / "reports/train.json")
    train = json.loads((pipeline_copy / "reports/train.json").read_text())
    cwd = os.getcwd()
    os.chdir(pipeline_copy)
    try:
        run_card(load_params("params.yaml"))
    finally:
        os.chdir(cwd)
    card = (pipeline_copy / "artifacts/model_card/README.md").read_text()
    techdoc = (pipeline_copy / "artifacts/model_card/technical_documentation.md").read_text()
    html = (pipeline_copy / "artifacts/model_card/model_card.html").read_text()
    front_matter = card.split("---")[1]

    # The objective, in words and as a Hub tag, and never another method's.
    assert OBJECTIVE[case] in card and OBJECTIVE[case] in techdoc and OBJECTIVE[case] in html
    assert f"- \"{TAG[case]}\"" in front_matter
    if train["method"] != "sft":
        assert "supervised fine-tuning" not in card + techdoc and '- "sft"' not in front_matter
    # The adapter kind and what the loss was on, as the report records them.
    kind = {"lora": "LoRA", "dora": "DoRA"}[train["adapter_type"]]
    assert f"| Adapter | {kind}" in card and f"| Adapter | {kind}" in techdoc
    assert ("rank-stabilised scaling (rsLoRA)" in card) == bool(train["adapter"]["rslora"])
    assert train["loss_on"] and f"| Loss computed on | {train['loss_on']} |" in card + techdoc
    if case == "sft":
        assert "assistant tokens only" in train["loss_on"]
    if case == "grpo":   # the rewards as the report lists them, and the GRPO settings
        assert "| Rewards | json_valid (metric json_valid, weight 1) - the evaluation registry's metrics" in card + techdoc
        assert "| GRPO settings | 2 completions per prompt, 2 prompts per step" in card
    if case == "sft-all-tokens-dora":
        assert train["loss_on"] == "every token of each conversation" and "assistant tokens only" not in techdoc
    assert "| Initial adapter | none (a new adapter) |" in card
    assert f"the last step ({train['optimizer_steps']})" in card or f"step-{train['best_step']}" in card
    assert missing_statements(train, {"README.md": card, "technical_documentation.md": techdoc}) == []
    # A card that says something else is caught, as `toolkit verify` does on a bundle.
    forged = card.replace(OBJECTIVE[case], "something else")
    assert missing_statements(train, {"README.md": forged})


def test_statements_for_qlora_and_a_continued_adapter():
    """QLoRA needs CUDA (no real run here) and a continued adapter comes from train.adapter.init_adapter:
    both are stated from the report's own fields."""
    from toolkit.governance.statements import card_tags, training_statements

    train = {"method": "dpo", "adapter_type": "qlora", "optimizer_steps": 40, "best_step": 30,
             "adapter": {"rslora": False, "init_adapter": "registry/releases/v3"},
             "objective": {"loss_type": "sigmoid"}, "loss_on": "chosen vs rejected completions"}
    stated = training_statements(train)
    assert stated["Objective"] == "Direct Preference Optimization (DPO)"
    assert stated["Adapter"] == "QLoRA (4-bit NF4 base)"
    assert stated["Initial adapter"] == "continued from `registry/releases/v3`"
    assert stated["Released checkpoint"] == "the step-30 checkpoint of 40 (lowest validation loss)"
    assert card_tags(train) == ["dpo", "qlora"]
    assert training_statements({**train, "loss_on": None})["Loss computed on"].startswith("not recorded")


def test_the_training_seeds_statement_comes_from_the_select_stage_only():
    from toolkit.governance.statements import training_statements

    plain = {"method": "sft", "adapter_type": "lora", "optimizer_steps": 3, "params": {"seed": 5}}
    assert "Training seeds" not in training_statements(plain)     # a bundle from before seeds: still verifiable
    one = {**plain, "seeds": {"count": 1, "seeds": [5], "rule": "best_validation", "rule_field": "validation_loss",
                              "chosen": 5}}
    assert training_statements(one)["Training seeds"] == "one training run (seed 5)"
    three = {**one, "seeds": {**one["seeds"], "count": 3, "seeds": [5, 6, 7], "chosen": 6}}
    assert training_statements(three)["Training seeds"] == ("seed 6 of 3 training runs (seeds 5, 6, 7), chosen "
                                                            "before evaluation by the lowest validation loss")
    grpo = {**three, "method": "grpo", "seeds": {**three["seeds"], "rule_field": "validation_reward"}}
    assert training_statements(grpo)["Training seeds"].endswith("by the highest validation reward")
    first = {**three, "seeds": {**three["seeds"], "rule": "first", "rule_field": None}}
    assert training_statements(first)["Training seeds"].endswith("by the first of train.seeds")
