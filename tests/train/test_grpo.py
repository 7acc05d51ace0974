"""GRPO (issue #18): rewards are metrics of the evaluation registry, scored on sampled completions;
the mean reward rises over a short run on a tiny model; records the rewards cannot score are refused
with file, line, field and metric; the reward curves, report and reward-hacking check."""

import json
from pathlib import Path

import pytest

from conftest import tiny_random_llama
from training_runs import kill_after_first_checkpoint, make_project, sft_rows, train_in
from toolkit.config import GrpoParams
from toolkit.errors import ConfigError, DataError
from toolkit.reports import MetricDelta, TrainReport
from toolkit.scoring.rewards import build_rewards, prompt_rows, reference_problem

# Shorter answers earn more: a dense reward a small policy can learn within a few dozen steps.
BREVITY = '''
def brevity(prediction, reference=None):
    return 1.0 - min(len(prediction), 80) / 80
'''


@pytest.fixture(scope="module")
def peaked_base(tiny_tokenizer, tmp_path_factory) -> Path:
    """The tiny random Llama with a larger output layer: the plain one's logits are almost uniform
    (entropy = log(vocab)), so no adapter on its inner layers can change what it samples."""
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer)
    model = tiny_random_llama(tokenizer, hidden_size=32, max_positions=128)
    torch.manual_seed(1)
    with torch.no_grad():
        model.lm_head.weight.normal_(0, 0.5)
    folder = tmp_path_factory.mktemp("peaked_base")
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def _grpo(**overrides) -> dict:
    return {"rewards": [{"metric": "rewards_for_test:brevity", "weight": 1.0},
                        {"metric": "json_valid", "weight": 0.0}],
            "num_generations": 4, "max_completion_length": 16, "learning_rate": 0.05, "max_steps": 40,
            "prompts_per_step": 4, "eval_records": 8, "beta": 0.0, **overrides}


def test_the_mean_reward_rises_and_the_run_reports_each_reward(tmp_path, peaked_base):
    (tmp_path / "rewards_for_test.py").write_text(BREVITY)
    params = make_project(tmp_path, peaked_base, sft_rows(32), sft_rows(8, offset=100), method="grpo",
                          grpo=_grpo(), checkpoint_steps=10)
    report, _ = train_in(tmp_path, params)

    assert report.method == "grpo" and report.optimizer_steps == 40
    history = report.reward_history
    assert len(history) == 40 and {"reward", "brevity", "json_valid", "completion_length"} <= set(history[0])
    objective = report.objective
    # Measured on this seed: about 0.79 over the first ten steps, 0.86 over the last ten.
    assert objective["final_reward"] > objective["first_reward"] + 0.03
    assert [r["name"] for r in objective["rewards"]] == ["brevity", "json_valid"]
    assert objective["rewards"][0]["metric"] == "rewards_for_test:brevity" and objective["num_generations"] == 4
    # The released checkpoint is the one with the best validation reward, not a loss.
    assert report.best_step in (10, 20, 30, 40) and objective["best_validation_reward"] is not None
    assert report.validation_loss is None and report.best_validation_loss is None
    assert "GRPO loss" in report.loss_on and "no KL penalty" in report.loss_on
    curves = tmp_path / "dvclive/train/plots/metrics"
    for curve in ("train/reward.tsv", "train/rewards/brevity.tsv", "train/rewards/json_valid.tsv",
                  "train/completion_length.tsv", "validation/reward.tsv"):
        assert len((curves / curve).read_text().splitlines()) > 1, curve
    assert (tmp_path / "artifacts/adapter/adapter_model.safetensors").is_file()


def test_grpo_continues_an_sft_adapter_with_a_kl_reference_and_ships_only_the_trained_copy(tmp_path, peaked_base):
    sft_root, grpo_root = tmp_path / "sft", tmp_path / "grpo"
    train_in(sft_root, make_project(sft_root, peaked_base, sft_rows(16), epochs=1))
    (grpo_root).mkdir()
    (grpo_root / "rewards_for_test.py").write_text(BREVITY)
    params = make_project(grpo_root, peaked_base, sft_rows(16), method="grpo", init_adapter=str(sft_root / "artifacts/adapter"),
                          grpo=_grpo(max_steps=4, beta=0.1))
    report, _ = train_in(grpo_root, params)
    assert report.adapter["init_adapter"] == str(sft_root / "artifacts/adapter")
    assert "KL penalty beta 0.1" in report.loss_on and "kl" in report.reward_history[-1]
    saved = grpo_root / "artifacts/adapter"
    assert not (saved / "ref").exists()
    assert (saved / "adapter_model.safetensors").read_bytes() != (sft_root / "artifacts/adapter/adapter_model.safetensors").read_bytes()


def test_a_record_without_a_reference_is_refused_naming_the_line_field_and_metric(tmp_path, peaked_base):
    rows = sft_rows(6)
    rows[3] = {"messages": rows[3]["messages"][:2]}          # ends with the user's turn: a prompt, no reference
    params = make_project(tmp_path, peaked_base, rows, method="grpo",
                          grpo={"rewards": [{"metric": "json_valid"}, {"metric": "field_accuracy"}]})
    with pytest.raises(DataError) as error:
        train_in(tmp_path, params)
    message = str(error.value)
    assert error.value.exit_code == 2 and "artifacts/data/train.jsonl:4" in message
    assert "field 'messages[-1]'" in message and "field_accuracy" in message


def test_prompts_without_references_train_when_no_reward_needs_one():
    rewards = build_rewards(GrpoParams(rewards=[{"metric": "json_valid"}]))
    rows = [{"messages": [{"role": "user", "content": "Reply in JSON."}]},
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "{}"}]}]
    assert prompt_rows(rows, rewards, "t.jsonl") == [
        {"prompt": rows[0]["messages"], "reference": None},
        {"prompt": rows[1]["messages"][:1], "reference": "{}"}]


def test_a_reference_the_reward_cannot_score_is_named():
    rewards = build_rewards(GrpoParams(rewards=[{"metric": "numeric_match", "args": {"abs_tol": 0.5}}]))
    row = {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "four"}]}
    field, message = reference_problem(row, rewards)
    assert field == "messages[-1].content" and "numeric_match" in message and "contain a number" in message
    assert reference_problem({"chosen": "a", "rejected": "b", "prompt": []}, rewards)[0] == "messages"


def test_bad_reward_settings_name_the_key():
    with pytest.raises(ConfigError, match=r"train.grpo.rewards\[1\].metric: unknown metric 'field_acuracy'"):
        build_rewards(GrpoParams(rewards=[{"metric": "json_valid"}, {"metric": "field_acuracy"}]))
    with pytest.raises(ConfigError, match=r"train.grpo.rewards\[0\].args: metric numeric_match"):
        build_rewards(GrpoParams(rewards=[{"metric": "numeric_match", "args": {"tolerance": 1}}]))
    with pytest.raises(ConfigError, match="two rewards are named 'json_valid'"):
        build_rewards(GrpoParams(rewards=[{"metric": "json_valid"}, {"metric": "json_valid"}]))


def test_a_reward_is_the_evaluation_metric_itself(tmp_path, monkeypatch):
    """The reward a completion earns in training equals the score the held-out tier gives that text."""
    from toolkit.scoring.metrics import BUILTIN

    monkeypatch.chdir(tmp_path)
    (tmp_path / "ticket.schema.json").write_text(json.dumps(
        {"type": "object", "required": ["category"], "properties": {"category": {"enum": ["billing", "technical"]}}}))
    rewards = build_rewards(GrpoParams(rewards=[
        {"metric": "field_accuracy"}, {"metric": "json_schema", "args": {"schema_file": "ticket.schema.json"}}]))
    completions = [[{"role": "assistant", "content": '{"category": "billing", "priority": "low"}'}],
                   [{"role": "assistant", "content": '{"category": "shipping"}'}],
                   [{"role": "assistant", "content": "not json"}]]
    reference = ['{"category": "billing", "priority": "high"}'] * 3
    assert rewards[0](prompts=[None] * 3, completions=completions, reference=reference) == [0.5, 0.0, 0.0]
    assert rewards[1](prompts=[None] * 3, completions=completions, reference=reference) == [1.0, 0.0, 0.0]
    texts = [c[0]["content"] for c in completions]
    assert [BUILTIN["field_accuracy"](t, r) for t, r in zip(texts, reference)] == [0.5, 0.0, 0.0]


def _delta(base: float, adapter: float, ci_low: float, ci_high: float) -> MetricDelta:
    return MetricDelta(base=base, adapter=adapter, delta=adapter - base, ci_low=ci_low, ci_high=ci_high, confidence=0.95)


def test_reward_hacking_is_suspected_only_when_the_reward_rose_and_an_unrewarded_metric_fell():
    from toolkit.evals.reward_check import reward_hacking
    from toolkit.scoring.metrics import BUILTIN

    class Suite:
        metrics = {name: type("M", (), {"metric": BUILTIN[metric]})() for name, metric in
                   (("field_accuracy", "field_accuracy"), ("json_valid", "json_valid"), ("exact_match", "exact_match"))}

    def train(first, final):
        return TrainReport.model_construct(method="grpo", adapter={"init_adapter": None}, objective={
            "rewards": [{"name": "json_valid", "metric": "json_valid", "weight": 0.5},
                        {"name": "field_accuracy", "metric": "field_accuracy", "weight": 1.0}],
            "first_reward": first, "final_reward": final})

    fell = {"base": {"field_accuracy": _delta(0.5, 0.8, 0.2, 0.4), "json_valid": _delta(0.5, 1.0, 0.4, 0.6),
                     "exact_match": _delta(0.6, 0.3, -0.4, -0.2)}}
    check = reward_hacking(train(0.6, 1.2), Suite, fell)
    assert check["suspected"] is True and list(check["fallen_metrics"]) == ["exact_match"]
    assert check["checked_metrics"] == ["exact_match"] and "base model" in check["compared_with"]
    assert reward_hacking(train(1.2, 0.6), Suite, fell)["suspected"] is False        # the reward did not rise
    noisy = {"base": {**fell["base"], "exact_match": _delta(0.6, 0.55, -0.15, 0.05)}}   # not a clear fall
    assert reward_hacking(train(0.6, 1.2), Suite, noisy)["suspected"] is False
    sft = TrainReport.model_construct(method="sft", adapter={}, objective={})
    assert reward_hacking(sft, Suite, fell) is None


def test_a_killed_grpo_run_resumes_from_its_last_checkpoint(tmp_path, peaked_base):
    from conftest import run_in

    (tmp_path / "rewards_for_test.py").write_text(BREVITY)
    make_project(tmp_path, peaked_base, sft_rows(32), sft_rows(8, offset=100), method="grpo",
                 grpo=_grpo(max_steps=40), checkpoint_steps=5, early_stopping_patience=None)
    kill_after_first_checkpoint(tmp_path)   # (early stopping off: where the kill lands changes the sampling)
    assert not (tmp_path / "reports/train.json").exists()
    resumed = run_in(tmp_path, "toolkit", "train", check=True)
    report = json.loads((tmp_path / "reports/train.json").read_text())
    assert report["resumed_from_step"] and report["resumed_from_step"] % 5 == 0
    assert report["optimizer_steps"] == 40 and f"resumed at step {report['resumed_from_step']}" in resumed.stdout
    steps = [row["step"] for row in report["reward_history"]]
    assert steps == sorted(set(steps)) and steps[-1] == 40 and report["objective"]["best_validation_reward"] is not None
