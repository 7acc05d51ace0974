"""The held-out tier on preference and KTO data (issue #15: it crashed with KeyError 'messages').

A real (tiny) DPO or KTO run, then the tier: the adapter must rank the chosen answer first more
often than the base, with a paired CI, beside the generation metrics on the prompts."""

import json
import os
import shutil
from pathlib import Path

import pytest

from training_runs import kto_rows, make_project, preference_rows, train_in

SUITE = """tier: heldout
items: split:heldout
primary_metric: {primary}
max_new_tokens: 8
metrics:
  exact_match: {{}}
"""


def _tier(root: Path, params):
    from toolkit.evals.tiers import run_tier

    cwd = Path.cwd()
    os.chdir(root)
    try:
        return run_tier(params, "heldout")
    finally:
        os.chdir(cwd)


def _project(tmp_path, tiny_base, rows, method, primary):
    params = make_project(tmp_path, tiny_base, rows, method=method, epochs=6, learning_rate=0.02)
    heldout = params.evaluate.heldout.model_copy(update={"bootstrap_samples": 200, "prompted_baseline": False})
    params = params.model_copy(update={"evaluate": params.evaluate.model_copy(update={"heldout": heldout})})
    shutil.copy(tmp_path / "artifacts/data/train.jsonl", tmp_path / "artifacts/data/heldout.jsonl")
    (tmp_path / "eval_suites/heldout").mkdir(parents=True)
    (tmp_path / "eval_suites/heldout/suite.yaml").write_text(SUITE.format(primary=primary))
    train_in(tmp_path, params)
    return params


def test_dpo_heldout_measures_preference_accuracy_and_margin(tmp_path, tiny_base):
    params = _project(tmp_path, tiny_base, preference_rows(16), "dpo", "preference_accuracy")
    report = _tier(tmp_path, params)
    accuracy, margin = report.metrics["preference_accuracy"], report.metrics["logprob_margin"]
    assert report.primary_metric == "preference_accuracy" and accuracy.n == margin.n == 16
    # Trained on these very pairs: the adapter prefers the chosen answer by far more than the base did.
    assert margin.delta > 0 and margin.ci_low > 0 and accuracy.adapter >= accuracy.base
    assert accuracy.p_value is not None and margin.p_value is None
    assert "exact_match" in report.metrics                        # the prompts are generated and scored too
    items = [json.loads(line) for line in (tmp_path / report.items_file).read_text().splitlines()]
    assert set(items[0]["scores"]["logprob_margin"]) == {"base", "adapter"}
    first = json.loads((tmp_path / "artifacts/data/heldout.jsonl").read_text().splitlines()[0])
    assert items[0]["reference"] == first["chosen"][0]["content"]          # the chosen answer is the reference


def test_kto_heldout_measures_desirable_and_undesirable_likelihoods(tmp_path, tiny_base):
    params = _project(tmp_path, tiny_base, kto_rows(16), "kto", "desirable_logprob")
    report = _tier(tmp_path, params)
    desirable, undesirable = report.metrics["desirable_logprob"], report.metrics["undesirable_logprob"]
    assert desirable.n == undesirable.n == 8
    assert desirable.delta > 0                    # desirable completions became likelier
    # Lower is better for undesirable completions: a fall is not a regression, a significant rise is.
    assert ("undesirable_logprob" in report.regressed_metrics) == (undesirable.ci_low > 0)
    assert report.metrics["exact_match"].n == 8   # only desirable completions are references


def test_a_preference_primary_metric_on_sft_items_is_a_clear_error(tmp_path, tiny_base):
    from training_runs import sft_rows
    from toolkit.errors import DataError

    params = _project(tmp_path, tiny_base, sft_rows(8), "sft", "preference_accuracy")
    with pytest.raises(DataError, match="preference metrics need preference or KTO records"):
        _tier(tmp_path, params)
