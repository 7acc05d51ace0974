"""Evaluation suites as data: discovery, validation with file:line:field, scoring and comparisons."""

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from toolkit.cli import cli
from toolkit.config import TierParams
from toolkit.errors import ConfigError, DataError
from toolkit.evals.suites import discover_suites, load_suite, parse_suite, with_few_shot
from toolkit.evals.tiers import compare, score_items

REPO = Path(__file__).resolve().parents[2]
REF = '{"category": "billing", "priority": "high", "product": "Nimbus Router"}'
SUITE = """\
tier: ood
items: items.jsonl
primary_metric: fields
metrics:
  fields: {metric: field_accuracy}
  valid: {metric: json_valid}
  says: {metric: contains}
few_shot:
  - {role: user, content: example ticket}
  - {role: assistant, content: '{"category": "billing"}'}
"""
ITEM = {"id": "a", "messages": [{"role": "system", "content": "triage"}, {"role": "user", "content": "ticket"}],
        "reference": REF, "metrics": ["fields", "valid"]}


def write_suite(root: Path, suite: str = SUITE, items: list | None = None, name: str = "probe") -> Path:
    folder = root / "eval_suites" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "suite.yaml").write_text(suite)
    lines = [line if isinstance(line, str) else json.dumps(line) for line in (items if items is not None else [ITEM])]
    (folder / "items.jsonl").write_text("".join(line + "\n" for line in lines))
    return folder


def test_shipped_suites_load_and_every_item_is_valid():
    suites = discover_suites(REPO / "eval_suites")
    assert {"heldout", "ood", "canary"} <= set(suites)
    for name in ("ood", "canary"):
        suite = parse_suite(suites[name])
        items = suite.load_items()
        assert len(items) >= 20 and suite.few_shot
        assert all(item.reference for item in items if "field_accuracy" in item.metrics)
    ood = {item.category for item in parse_suite(suites["ood"]).load_items()}
    assert {"empty_input", "long_input", "unicode", "prompt_injection", "sister_task_chat"} <= ood


def test_a_suite_runs_from_data_alone(in_tmp):
    folder = write_suite(in_tmp, items=[ITEM, {**ITEM, "id": "b", "metrics": ["says"], "args": {"says": {"text": "x"}},
                                               "few_shot": False, "category": "chat"}])
    suite = load_suite("probe", in_tmp / "eval_suites")
    items = suite.load_items()
    assert suite.folder == folder and [i.id for i in items] == ["a", "b"] and items[1].category == "chat"
    assert with_few_shot(items[0].messages, suite.few_shot)[1:3] == suite.few_shot  # after the system turn
    outputs = {"base": ["no", "x marks"], "adapter": [REF, "nothing"]}
    scores = score_items(suite, items, outputs)
    assert scores["fields"] == [{"index": 0, "base": 0.0, "adapter": 1.0}]
    assert scores["says"] == [{"index": 1, "base": 1.0, "adapter": 0.0}]
    deltas = compare(suite, scores, "base", TierParams(bootstrap_samples=200), seed=0)
    assert deltas["valid"].n == 1 and deltas["valid"].delta == 1.0 and deltas["valid"].p_value == 1.0
    assert deltas["fields"].p_value is None or deltas["fields"].p_value == 1.0
    assert deltas["says"].delta == -1.0


@pytest.mark.parametrize("suite, message", [
    (SUITE.replace("fields: {metric: field_accuracy}", "fields: {metric: bleu}"),
     r"suite.yaml:5: unknown metric 'bleu'"),
    (SUITE.replace("tier: ood", "tier: ood\ncolour: red"), r"suite.yaml:2: colour: unknown key"),
    (SUITE.replace("primary_metric: fields", "primary_metric: accuracy"),
     r"suite.yaml:3: primary_metric: primary_metric 'accuracy' is not one of"),
    (SUITE.replace("valid: {metric: json_valid}", "valid: {metric: json_valid, strict: true}"),
     r"suite.yaml:6: metric json_valid: got an unexpected keyword argument 'strict'"),
    (SUITE.replace("- {role: user, content: example ticket}", "- {role: robot, content: example ticket}"),
     r"suite.yaml:9: few_shot.0: each few-shot turn"),
    (SUITE.replace("items: items.jsonl", "items: split:test"), r"suite.yaml:2: items: unknown split"),
    ("tier: ood\nitems: items.jsonl\nprimary_metric: x\nmetrics: {}\n", r"suite.yaml:4: metrics: .*at least 1 item"),
    ("- a list\n", r"suite.yaml:1: expected a mapping"),
])
def test_suite_file_errors_name_the_line(in_tmp, suite, message):
    write_suite(in_tmp, suite)
    with pytest.raises(ConfigError, match=message):
        load_suite("probe", in_tmp / "eval_suites")


@pytest.mark.parametrize("line, field, message", [
    ("{not json", None, "not valid JSON"),
    ({**ITEM, "colour": 1}, "colour", "unknown key"),
    ({"id": "c", "reference": REF}, "messages", "exactly one of messages"),
    ({**ITEM, "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
     "messages[1]", "last turn must be the user's"),
    ({**ITEM, "messages": [{"role": "user", "text": "hi"}]}, "messages[0]", "each turn needs"),
    ({**ITEM, "metrics": ["fields", "rouge"]}, "metrics", "'rouge' is not one of the suite's metrics"),
    ({**ITEM, "reference": None}, "reference", "metric fields needs a reference"),
    ({**ITEM, "metrics": ["says"]}, "args.says", "missing a required argument: 'text'"),
    ({**ITEM, "args": {"says": {"text": "x"}}}, "args", "does not apply to this item"),
    ({**ITEM, "few_shot": "yes"}, "few_shot", "true or false"),
    ({**ITEM, "id": "first"}, "id", "duplicate id 'first'"),
])
def test_item_errors_name_file_line_and_field(in_tmp, line, field, message):
    write_suite(in_tmp, items=[{**ITEM, "id": "first"}, line])
    with pytest.raises(DataError) as error:
        load_suite("probe", in_tmp / "eval_suites").load_items()
    assert error.value.line == 2 and error.value.field == field and error.value.file.endswith("items.jsonl")
    assert message in str(error.value)


def test_cli_lists_suites_and_refuses_a_broken_one_with_exit_2(in_tmp):
    shutil.copytree(REPO / "eval_suites", in_tmp / "eval_suites")
    shutil.copy(REPO / "params.yaml", in_tmp / "params.yaml")
    listed = CliRunner().invoke(cli, ["evaluate", "list"])
    assert listed.exit_code == 0, listed.output
    assert "ood: tier ood, 30 items" in listed.output and "heldout: tier heldout, validated split" in listed.output
    write_suite(in_tmp, SUITE.replace("fields: {metric: field_accuracy}", "fields: {metric: bleu}"), name="broken")
    result = CliRunner().invoke(cli, ["evaluate", "suite", "broken"])
    assert result.exit_code == 2 and "eval_suites/broken/suite.yaml:5" in result.output
    result = CliRunner().invoke(cli, ["evaluate", "suite", "nothing"])
    assert result.exit_code == 2 and "no evaluation suite 'nothing'" in result.output
    # Nothing was generated or written for a broken suite.
    assert not (in_tmp / "reports").exists()
