"""Release decisions across training seeds (issue #18, part 2): one adapter per seed of train.seeds,
the released one chosen by a rule that reads only validation figures, every seed evaluated on the same
items, and the tiers' across-seed figures (per seed, mean, worst, spread, a two-level interval) that
the gate and the card read."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from training_runs import make_project, preference_rows
from toolkit.errors import ConfigError
from toolkit.evals.stats import across_seeds, paired_bootstrap
from toolkit.reports import SeedRun

SEEDS = [11, 22, 33]
SUITE = """tier: {tier}
items: split:heldout
primary_metric: logprob_margin
max_new_tokens: 8
metrics:
  exact_match: {{}}
"""


class _In:
    def __init__(self, root: Path):
        self.root, self.cwd = root, Path.cwd()

    def __enter__(self):
        os.chdir(self.root)

    def __exit__(self, *exc):
        os.chdir(self.cwd)


@pytest.fixture(scope="module")
def three_seeds(tmp_path_factory, tiny_base):
    """A DPO project (a continuous per-item metric: the log-likelihood margin) trained with three
    seeds, the seed selected, each seed evaluated and the held-out tier run."""
    from toolkit.evals.seeds import run_seed_eval
    from toolkit.evals.tiers import run_tier
    from toolkit.train.run import run_train
    from toolkit.train.seeds import run_select

    root = tmp_path_factory.mktemp("seeds")
    rows = preference_rows(16)
    params = make_project(root, tiny_base, rows, rows[:6], method="dpo", epochs=4, learning_rate=0.02, seeds=SEEDS)
    tiers = {name: params.evaluate.heldout.model_copy(update={"bootstrap_samples": 400, "prompted_baseline": False})
             for name in ("heldout", "ood", "canary")}
    params = params.model_copy(update={"evaluate": params.evaluate.model_copy(update=tiers)})
    shutil.copy(root / "artifacts/data/train.jsonl", root / "artifacts/data/heldout.jsonl")
    for tier in ("heldout", "ood", "canary"):
        (root / "eval_suites" / tier).mkdir(parents=True)
        (root / "eval_suites" / tier / "suite.yaml").write_text(SUITE.format(tier=tier))
    with _In(root):
        trained = {seed: run_train(params, seed) for seed in SEEDS}
        selected = run_select(params)
        evaluated = {seed: run_seed_eval(params, seed) for seed in SEEDS}
        heldout = run_tier(params, "heldout")
    return root, params, trained, selected, evaluated, heldout


def test_each_seed_trains_into_its_own_folders_and_the_rule_picks_by_validation_loss(three_seeds):
    root, params, trained, selected, _, _ = three_seeds
    for seed, report in trained.items():
        assert report.params["seed"] == seed and "seeds" not in report.params["train"]
        assert (root / f"artifacts/runs/seed-{seed}/adapter/adapter_model.safetensors").is_file()
        assert (root / f"dvclive/runs/seed-{seed}/plots/metrics/train/loss.tsv").is_file()
    assert len({r.outputs[f"artifacts/runs/seed-{s}/adapter"] for s, r in trained.items()}) == 3   # three adapters
    losses = {seed: report.validation_loss for seed, report in trained.items()}
    chosen = min(SEEDS, key=losses.get)
    selection = selected.seeds
    assert selection.chosen == chosen and selection.rule == "best_validation" and selection.rule_field == "validation_loss"
    assert [run.validation_loss for run in selection.runs] == [losses[s] for s in SEEDS]
    assert selection.total_wall_time_s == pytest.approx(sum(r.wall_time_s for r in trained.values()), abs=0.05)
    # The released adapter is the chosen seed's, byte for byte, and the report says so.
    saved = json.loads((root / "reports/train.json").read_text())
    assert saved["outputs"] == {"artifacts/adapter": trained[chosen].outputs[f"artifacts/runs/seed-{chosen}/adapter"]}
    assert saved["seeds"]["chosen"] == chosen and saved["validation_loss"] == losses[chosen]
    assert json.loads((root / "metrics/train.json").read_text())["chosen_seed"] == chosen


def test_the_across_seed_interval_holds_every_seed_and_is_wider_than_one_run(three_seeds):
    root, params, _, selected, evaluated, heldout = three_seeds
    seeds = heldout.across_seeds
    assert seeds.count == 3 and seeds.seeds == SEEDS and seeds.chosen == selected.seeds.chosen
    margin = seeds.metrics["logprob_margin"]
    assert set(margin.per_seed) == {str(s) for s in SEEDS} and margin.n == 16
    items = [json.loads(line) for line in (root / heldout.items_file).read_text().splitlines()]
    base = [item["scores"]["logprob_margin"]["base"] for item in items]
    widths = []
    for seed in SEEDS:
        adapter = evaluated[seed].tiers["heldout"].scores["logprob_margin"]
        single = paired_bootstrap(base, adapter, 400, 0.95, params.seed)      # that run's own interval
        assert margin.per_seed[str(seed)] == pytest.approx(single.delta, abs=1e-6)
        assert margin.ci_low <= single.delta <= margin.ci_high
        widths.append(single.ci_high - single.ci_low)
    assert margin.ci_high - margin.ci_low > max(widths)
    assert margin.mean == pytest.approx(np.mean(list(margin.per_seed.values())), abs=1e-6)
    assert margin.worst == min(margin.per_seed.values()) and margin.spread == pytest.approx(
        max(margin.per_seed.values()) - min(margin.per_seed.values()), abs=1e-6)
    # The tier's own figures are the released seed's: the same delta its seed evaluation gives, and
    # its generated outputs are that evaluation's (not generated a second time).
    assert heldout.metrics["logprob_margin"].delta == pytest.approx(margin.per_seed[str(seeds.chosen)], abs=1e-5)
    assert heldout.generation["adapter_outputs"].startswith(f"reports/seed_evals/seed-{seeds.chosen}.json")
    assert [item["adapter_output"] for item in items] == evaluated[seeds.chosen].tiers["heldout"].outputs
    assert heldout.generation["adapter_wall_s"] == evaluated[seeds.chosen].tiers["heldout"].meter["wall_s"]
    assert json.loads((root / "metrics/heldout.json").read_text())["across_seeds"]["seeds"] == 3


def test_a_policy_asking_for_three_seeds_blocks_a_one_seed_run(three_seeds, tmp_path):
    from toolkit.governance.gate import run_gate
    from toolkit.train.seeds import run_select

    root, params, _, _, _, _ = three_seeds
    repo_policy = yaml.safe_load((Path(__file__).resolve().parents[2] / "policies/production.yaml").read_text())
    rule = next(r for r in repo_policy["rules"] if r["id"] == "enough_training_seeds")
    (root / "policies").mkdir(exist_ok=True)
    (root / "policies/seeds.yaml").write_text(yaml.safe_dump({"name": "seeds", "description": "t", "rules": [rule]}))
    one_seed = params.model_copy(update={"train": params.train.model_copy(update={"seeds": [SEEDS[1]]})})
    with _In(root):
        assert run_gate("seeds").passed
        assert run_select(one_seed).seeds.count == 1
        gate = run_gate("seeds")
        run_select(params)    # the module's other tests read the three-seed selection
    assert not gate.passed and gate.rules[0].status == "failed" and gate.rules[0].value == 1


def test_an_evaluation_of_another_adapter_or_other_items_is_refused(three_seeds):
    from toolkit.evals.seeds import compare_across_seeds
    from toolkit.evals.suites import load_suite
    from toolkit.layout import seed_eval_path
    from toolkit.reports import SeedEvalReport, TrainReport, read_report

    root, params, _, _, _, heldout = three_seeds
    with _In(root):
        train = read_report("reports/train.json", TrainReport)
        suite = load_suite("heldout")
        path = seed_eval_path(SEEDS[0])
        saved = path.read_text()
        try:
            stale = read_report(path, SeedEvalReport)
            path.write_text(stale.model_copy(update={"adapter_sha256": "0" * 64}).model_dump_json())
            with pytest.raises(ConfigError, match="evaluated another adapter than seed 11"):
                compare_across_seeds("heldout", suite, heldout.n_items, {}, params.evaluate.heldout, train, 0)
            with pytest.raises(ConfigError, match="other heldout items"):
                path.write_text(saved)
                compare_across_seeds("heldout", suite, heldout.n_items - 1, {}, params.evaluate.heldout, train, 0)
        finally:
            path.write_text(saved)


def _run(seed, loss=None, reward=None) -> SeedRun:
    return SeedRun(seed=seed, report="r", adapter_sha256="a", validation_loss=loss, validation_reward=reward,
                         optimizer_steps=1, wall_time_s=1.0, gpu_hours=0.0)


def test_the_selection_rule():
    from toolkit.train.seeds import choose

    assert choose("best_validation", "sft", {1: _run(1, loss=0.5), 2: _run(2, loss=0.4), 3: _run(3, loss=0.4)}) == (2, "validation_loss")
    assert choose("best_validation", "grpo", {1: _run(1, reward=1.2), 2: _run(2, reward=1.1)}) == (1, "validation_reward")
    assert choose("first", "sft", {5: _run(5), 1: _run(1)}) == (5, None)
    with pytest.raises(ConfigError, match=r"seed\(s\) 2 had no validation split.*train.seed_selection: first"):
        choose("best_validation", "sft", {1: _run(1, loss=0.5), 2: _run(2)})


def test_the_two_level_interval_on_known_numbers():
    rng = np.random.default_rng(0)
    base = (rng.random(150) < 0.3).astype(float)
    seeds = {s: list((rng.random(150) < p).astype(float)) for s, p in ((1, 0.75), (2, 0.9), (3, 0.97))}
    result = across_seeds(list(base), seeds, 2000, 0.95, 7)
    singles = {s: paired_bootstrap(list(base), v, 2000, 0.95, 7) for s, v in seeds.items()}
    assert all(result.ci_low <= d.delta <= result.ci_high for d in singles.values())
    assert result.ci_high - result.ci_low > max(d.ci_high - d.ci_low for d in singles.values())
    assert result.worst == min(d.delta for d in singles.values())
    # One seed: the single run's own percentile interval over items (up to bootstrap noise).
    one = across_seeds(list(base), {1: seeds[1]}, 4000, 0.95, 7)
    assert one.spread == 0 and one.ci_low == pytest.approx(singles[1].ci_low, abs=0.02)
    assert one.ci_high == pytest.approx(singles[1].ci_high, abs=0.02)
    lower = across_seeds([0.0] * 3, {1: [-1.0, -1.0, -1.0], 2: [-2.0, -2.0, -2.0]}, 200, 0.95, 7, lower_is_better=True)
    assert lower.worst == -1.0 and lower.best == -2.0
    with pytest.raises(ValueError):
        across_seeds([0.0, 1.0], {1: [1.0]}, 200, 0.95, 7)


@pytest.mark.e2e
def test_the_card_states_the_released_seed_and_the_spread_across_seeds(three_seeds, pipeline_copy):
    """A three-seed run's train and held-out reports rendered into a completed pipeline's card."""
    from toolkit.config import load_params
    from toolkit.governance.card import run_card
    from toolkit.governance.statements import missing_statements

    root, _, _, selected, _, heldout = three_seeds
    for name in ("train", "eval_heldout"):
        shutil.copy(root / f"reports/{name}.json", pipeline_copy / f"reports/{name}.json")
    with _In(pipeline_copy):
        run_card(load_params("params.yaml"))
    card = (pipeline_copy / "artifacts/model_card/README.md").read_text()
    techdoc = (pipeline_copy / "artifacts/model_card/technical_documentation.md").read_text()
    chosen = selected.seeds.chosen
    statement = (f"| Training seeds | seed {chosen} of 3 training runs (seeds 11, 22, 33), chosen before evaluation "
                 "by the lowest validation loss |")
    assert statement in card and statement in techdoc
    margin = heldout.across_seeds.metrics["logprob_margin"]
    assert f"Across 3 training seeds (11, 22, 33; the released adapter is seed {chosen}'s)" in card
    assert f"| logprob_margin (primary) | 11: {margin.per_seed['11']:+.4f}, 22: {margin.per_seed['22']:+.4f}" in card
    assert f"[{margin.ci_low:+.4f}, {margin.ci_high:+.4f}]" in card
    train = json.loads((pipeline_copy / "reports/train.json").read_text())
    assert missing_statements(train, {"README.md": card, "technical_documentation.md": techdoc}) == []
    forged = card.replace(f"seed {chosen} of 3", f"seed {chosen} of 5")
    assert missing_statements(train, {"README.md": forged})


def test_gate_rules_can_name_the_across_seed_interval_the_worst_seed_and_the_spread(three_seeds):
    from toolkit.governance.gate import run_gate

    root, _, _, _, _, heldout = three_seeds
    rules = [{"id": f"seeds_{field}", "report": "eval_heldout", "field": f"across_seeds.metrics.{{primary_metric}}.{field}",
              "op": op, "threshold": threshold, "severity": "block", "rationale": "t"}
             for field, op, threshold in (("ci_low", "min", -100), ("worst", "min", -100), ("spread", "max", 0.0))]
    (root / "policies").mkdir(exist_ok=True)
    (root / "policies/spread.yaml").write_text(yaml.safe_dump({"name": "spread", "description": "t", "rules": rules}))
    with _In(root):
        gate = run_gate("spread")
    margin = heldout.across_seeds.metrics["logprob_margin"]
    assert {r.id: r.value for r in gate.rules} == {"seeds_ci_low": margin.ci_low, "seeds_worst": margin.worst,
                                                   "seeds_spread": margin.spread}
    # Three seeds that trained differently: a spread above zero fails a rule that allows none.
    assert [r.status for r in gate.rules] == ["passed", "passed", "failed"] and not gate.passed
