import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from toolkit.cli import cli
from toolkit.errors import ConfigError, GateFailed
from toolkit.governance.gate import enforce, lookup, run_gate
from toolkit.governance.policy import load_policy

EVAL = {"stage": "eval_heldout", "tier": "heldout", "n_items": 120, "primary_metric": "field_accuracy",
        "metrics": {"field_accuracy": {"base": 0.1, "adapter": 0.7, "delta": 0.6, "ci_low": 0.5, "ci_high": 0.7,
                                       "confidence": 0.95}}}


def _write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _policy(rules: str, extra: str = "") -> str:
    return f"name: t\ndescription: test\n{extra}rules:\n{rules}"


RULE = """  - id: improves
    report: eval_heldout
    field: metrics.{primary_metric}.ci_low
    op: min
    threshold: 0.2
    severity: block
    rationale: must improve
"""


def test_lookup_resolves_braced_segments_and_list_indices():
    assert lookup(EVAL, "metrics.{primary_metric}.delta") == 0.6
    assert lookup({"a": [{"b": 1}, {"b": 2}]}, "a.-1.b") == 2
    assert lookup(EVAL, "metrics.bleu.delta") is not None  # the sentinel, not a value
    assert lookup(EVAL, "metrics.bleu.delta") != 0


def test_gate_passes_fails_and_reports_value_threshold_and_source(in_tmp):
    _write(in_tmp, "reports/eval_heldout.json", json.dumps(EVAL))
    _write(in_tmp, "policies/t.yaml", _policy(RULE))
    report = run_gate("t")
    assert report.passed and report.rules[0].value == 0.5 and report.rules[0].report_sha256

    _write(in_tmp, "policies/strict.yaml", _policy(RULE.replace("0.2", "0.9")))
    report = run_gate("strict")
    rule = report.rules[0]
    assert not report.passed and rule.status == "failed" and rule.value == 0.5 and rule.threshold == 0.9
    saved = json.loads((in_tmp / "reports/gate.json").read_text())
    assert saved["passed"] is False and saved["rules"][0]["rationale"] == "must improve"
    assert "FAILED" in (in_tmp / "reports/gate.md").read_text()
    with pytest.raises(GateFailed) as err:
        enforce(report)
    assert err.value.exit_code == 1


def test_missing_report_is_missing_never_passed(in_tmp):
    _write(in_tmp, "policies/t.yaml", _policy(RULE))
    report = run_gate("t")
    assert report.rules[0].status == "missing" and not report.passed


def test_warn_severity_does_not_block(in_tmp):
    _write(in_tmp, "reports/eval_heldout.json", json.dumps(EVAL))
    _write(in_tmp, "policies/t.yaml", _policy(RULE.replace("0.2", "0.9").replace("block", "warn")))
    report = run_gate("t")
    assert report.passed and report.warnings == 1 and report.rules[0].status == "warned"


@pytest.mark.parametrize("op, threshold, value, ok", [
    ("max", 0, 0, True), ("max", 0, 1, False), ("equals", True, True, True), ("equals", [], ["x"], False),
    ("one_of", ["a", "b"], "b", True), ("required", None, "", False), ("required", None, "x", True),
    ("min", 1, "not a number", False),
])
def test_comparisons(op, threshold, value, ok):
    from toolkit.governance.gate import compare
    assert compare(op, value, threshold) is ok


def test_extends_inherits_and_overrides_by_id(in_tmp):
    _write(in_tmp, "policies/parent.yaml", _policy(RULE))
    _write(in_tmp, "policies/child.yaml", _policy(RULE.replace("0.2", "0.4"), extra="extends: parent\n"))
    policy = load_policy("child")
    assert len(policy.rules) == 1 and policy.rules[0].threshold == 0.4


@pytest.mark.parametrize("change, line, message", [
    (("op: min", "op: atleast"), 7, "unknown comparison 'atleast'"),
    (("report: eval_heldout", "report: evals"), 5, "unknown report 'evals'"),
    (("field: metrics", "field: metricz"), 6, "(no 'metricz' there)"),
    (("severity: block", "severity: fatal"), 9, "expected one of block, warn"),
    (("threshold: 0.2", "threshold: high"), 8, "expected a number"),
    (("    rationale: must improve\n", ""), 4, "rationale: missing"),
])
def test_malformed_rules_name_file_line_and_rule(in_tmp, change, line, message):
    _write(in_tmp, "policies/bad.yaml", _policy(RULE.replace(*change)))
    with pytest.raises(ConfigError) as err:
        load_policy("bad")
    text = str(err.value)
    assert f"policies/bad.yaml:{line}: rules[0] (improves)" in text and message in text


def test_policy_with_a_yaml_syntax_error_names_the_line(in_tmp):
    _write(in_tmp, "policies/bad.yaml", "name: bad\nrules:\n  - id: x\n    field: [unclosed\n")
    with pytest.raises(ConfigError, match=r"policies/bad.yaml:\d+: not valid YAML"):
        load_policy("bad")


def test_unknown_policy_lists_the_known_ones(in_tmp):
    with pytest.raises(ConfigError, match="known policies: default"):
        load_policy("nonesuch")


def test_shipped_default_policy_parses():
    root = Path(__file__).resolve().parents[2]
    policy = load_policy(str(root / "policies/default.yaml"))
    assert {r.id for r in policy.rules} >= {"data_validated", "heldout_primary_ci_above_zero"}


def test_cli_gate_exit_codes(in_tmp):
    _write(in_tmp, "reports/eval_heldout.json", json.dumps(EVAL))
    _write(in_tmp, "policies/t.yaml", _policy(RULE))
    _write(in_tmp, "policies/strict.yaml", _policy(RULE.replace("0.2", "0.9")))
    assert CliRunner().invoke(cli, ["gate", "--policy", "t"]).exit_code == 0
    failed = CliRunner().invoke(cli, ["gate", "--policy", "strict"])
    assert failed.exit_code == 1 and "gate FAILED" in failed.output and "improves (failed)" in failed.output
    _write(in_tmp, "policies/broken.yaml", "rules: [1]\n")
    assert CliRunner().invoke(cli, ["gate", "--policy", "broken"]).exit_code == 2


@pytest.mark.parametrize("field, bad_part", [
    ("metrics.{primary_metric}.p_valu", "p_valu"),   # under a dict of MetricDelta, fields are still checked
    ("n_items.total", "total"),                     # a number has no fields
    ("generation.anything.at.all", None),           # dict[str, Any]: not checked deeper
    ("metrics.{primary_metric}.relative_delta", None),
])
def test_rule_fields_are_checked_against_the_report_schema(in_tmp, field, bad_part):
    _write(in_tmp, "policies/p.yaml", _policy(RULE.replace("metrics.{primary_metric}.ci_low", field)))
    if bad_part is None:
        assert load_policy("p").rules[0].field == field
        return
    with pytest.raises(ConfigError, match=rf"policies/p.yaml:6: rules\[0\] \(improves\).field: .*no '{bad_part}' there"):
        load_policy("p")


@pytest.mark.parametrize("field, bad_part", [
    ("training.cost", None),
    ("roi.payback_months", None),
    ("inference.apis.0.monthly_saving", None),
    ("roi.payback_monthz", "payback_monthz"),         # the cost report's sections are typed: a typo is caught
    ("estimate.memory.total_gbs", "total_gbs"),
    ("breakdown.serving", "serving"),
])
def test_cost_rule_fields_are_checked_against_the_cost_report_sections(in_tmp, field, bad_part):
    rule = RULE.replace("eval_heldout", "cost").replace("metrics.{primary_metric}.ci_low", field)
    _write(in_tmp, "policies/p.yaml", _policy(rule))
    if bad_part is None:
        assert load_policy("p").rules[0].field == field
        return
    with pytest.raises(ConfigError, match=rf"rules\[0\] \(improves\).field: .*no '{bad_part}' there"):
        load_policy("p")


JUDGE_RULE = """  - id: judge
    report: eval_judge
    field: win_rate.ci_low
    op: min
    threshold: 0.5
    severity: block
    allow_skipped: ALLOW
    rationale: judge must prefer the adapter
"""


@pytest.mark.parametrize("allow, passed, status", [("false", False, "skipped"), ("true", True, "skipped")])
def test_a_skipped_tier_is_skipped_never_passed_and_blocks_unless_allowed(in_tmp, allow, passed, status):
    _write(in_tmp, "reports/eval_judge.json", json.dumps({"stage": "eval_judge", "skipped": True,
                                                          "skip_reason": "ANTHROPIC_API_KEY is not set"}))
    _write(in_tmp, "policies/j.yaml", _policy(JUDGE_RULE.replace("ALLOW", allow)))
    report = run_gate("j")
    outcome = report.rules[0]
    assert outcome.status == status and "ANTHROPIC_API_KEY" in outcome.message
    assert report.passed is passed and (report.warnings == 1) is passed
    assert "| judge (block) | **skipped** |" in Path("reports/gate.md").read_text()


def test_allow_skipped_must_be_boolean_and_governance_fields_must_exist(in_tmp):
    _write(in_tmp, "policies/j.yaml", _policy(JUDGE_RULE.replace("ALLOW", "sometimes")))
    with pytest.raises(ConfigError, match=r"allow_skipped: expected true or false"):
        load_policy("j")
    _write(in_tmp, "policies/g.yaml", _policy(RULE, extra="documentation:\n  required_governance: [intended_use, mood]\n"))
    with pytest.raises(ConfigError, match=r"policies/g.yaml:4: documentation.required_governance\[1\]: unknown governance field 'mood'"):
        load_policy("g")


def test_shipped_policies_build_on_each_other():
    root = Path(__file__).resolve().parents[2]
    default, production, high = (load_policy(str(root / f"policies/{n}.yaml")) for n in ("default", "production", "high-risk"))
    assert set(default.required_sections) < set(production.required_sections) < set(high.required_sections)
    assert set(default.required_governance) < set(production.required_governance) < set(high.required_governance)
    rules = {name: {r.id: r for r in p.rules} for name, p in (("d", default), ("p", production), ("h", high))}
    assert rules["p"]["heldout_primary_ci_above_zero"].threshold > rules["d"]["heldout_primary_ci_above_zero"].threshold
    assert rules["h"]["ood_regression_bounded"].threshold > rules["p"]["ood_regression_bounded"].threshold
    for rule_id in ("ood_regression_bounded", "canary_vs_base", "canary_vs_last_release", "general_capability_kept",
                    "judge_prefers_adapter", "no_unredacted_pii", "no_contamination", "training_cost_ceiling",
                    "serving_cost_ceiling", "roi_positive", "chat_template_consistent", "documentation_complete"):
        assert rule_id in rules["p"], rule_id
    assert rules["p"]["judge_prefers_adapter"].allow_skipped is False
    assert rules["h"]["declared_high_risk"].threshold == "high"


CANARY = {**EVAL, "stage": "eval_canary", "tier": "canary", "against_previous": None}
PREVIOUS_RULE = """  - id: vs_previous
    report: eval_canary
    field: against_previous.{primary_metric}.delta
    op: min
    threshold: -0.05
    severity: block
    rationale: no drop against the last release
"""


@pytest.mark.parametrize("previous, allow_absent, status, passed", [
    (None, True, "not_applicable", True),      # the first release: nothing to compare with
    (None, False, "missing", False),           # without allow_absent a null section is missing evidence
    ({"field_accuracy": {**EVAL["metrics"]["field_accuracy"], "delta": -0.2}}, True, "failed", False),
    ({"field_accuracy": {**EVAL["metrics"]["field_accuracy"], "delta": 0.0}}, True, "passed", True),
])
def test_allow_absent_makes_a_null_comparison_not_applicable(in_tmp, previous, allow_absent, status, passed):
    _write(in_tmp, "reports/eval_canary.json", json.dumps({**CANARY, "against_previous": previous}))
    rule = PREVIOUS_RULE + ("    allow_absent: true\n" if allow_absent else "")
    _write(in_tmp, "policies/t.yaml", _policy(rule))
    report = run_gate("t")
    assert report.rules[0].status == status and report.passed is passed
    assert report.warnings == 0


def test_a_custom_suite_report_can_be_gated_and_its_fields_are_checked(in_tmp):
    _write(in_tmp, "reports/eval_billing_probe.json", json.dumps({**EVAL, "stage": "eval_billing_probe"}))
    _write(in_tmp, "policies/t.yaml", _policy(RULE.replace("eval_heldout", "eval_billing_probe")))
    assert run_gate("t").passed
    _write(in_tmp, "policies/bad.yaml", _policy(RULE.replace("eval_heldout", "eval_billing_probe")
                                                .replace("ci_low", "ci_lowest")))
    with pytest.raises(ConfigError, match="no 'ci_lowest' there"):
        load_policy("bad")
    _write(in_tmp, "policies/bad2.yaml", _policy(RULE.replace("eval_heldout", "evaluation")))
    with pytest.raises(ConfigError, match="unknown report 'evaluation'"):
        load_policy("bad2")
