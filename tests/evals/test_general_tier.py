"""The general-capability tier (lm-eval; MMLU by default): the base cache is invalidated by any change to
the tasks or the data they read, and the tier's old name `mmlu` still reads everywhere."""

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from toolkit.config import Params
from toolkit.evals.general import task_files_digest

REPO = Path(__file__).resolve().parents[2]


def test_editing_a_question_changes_the_cache_key(in_tmp):
    shutil.copytree(REPO / "eval_suites/mmlu_local", in_tmp / "eval_suites/mmlu_local")
    tasks, data = "eval_suites/mmlu_local/tasks", Path("eval_suites/mmlu_local/data/arithmetic.jsonl")
    before = task_files_digest(tasks, None)
    assert task_files_digest(tasks, None) == before
    data.write_text(data.read_text().replace('"What is', '"What, exactly, is', 1))
    assert task_files_digest(tasks, None) != before
    edited = task_files_digest(tasks, None)
    config = Path(tasks) / "mmlu_local_arithmetic.yaml"
    config.write_text(config.read_text().replace("Answer:", "Answer: "))
    assert task_files_digest(tasks, None) != edited
    assert task_files_digest(None, "eval_suites/mmlu_local/data") != task_files_digest(None, None) == "hub"


def test_the_old_name_mmlu_still_reads_in_params_policies_and_the_cli(in_tmp):
    from toolkit.cli import cli
    from toolkit.governance.policy import load_policy

    old = Params.model_validate({"evaluate": {"mmlu": {"tasks": ["mmlu_local"], "limit": 7}}})
    assert old.evaluate.general.limit == 7
    with pytest.raises(ValueError, match="old name of evaluate.general"):
        Params.model_validate({"evaluate": {"mmlu": {"limit": 7}, "general": {"limit": 8}}})
    # A policy written for the old report name checks the renamed report, not an absent custom suite.
    Path("policies/old.yaml").write_text(
        "name: old\nrules:\n  - id: kept\n    report: eval_mmlu\n    field: metrics.accuracy.delta\n"
        "    op: min\n    threshold: -0.05\n    rationale: old name\n")
    rule, = load_policy("policies/old.yaml").rules
    assert rule.report == "eval_general"
    runner = CliRunner()
    assert "general" in runner.invoke(cli, ["evaluate", "--help"]).output
    assert "same as `evaluate general`" in runner.invoke(cli, ["evaluate", "mmlu", "--help"]).output
