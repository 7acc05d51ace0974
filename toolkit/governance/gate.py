"""The gate: evaluates a policy's rules against the stage reports, writes JSON + Markdown.

The gate only reads reports; it never recomputes a metric. A rule whose report or field is absent
is `missing`, never `passed`, and a blocking `missing` fails the gate like a failed rule. A rule on a
tier that reports itself `skipped` (e.g. the judge without an API key) is `skipped`: it blocks
unless the rule says `allow_skipped: true`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from toolkit import headline
from toolkit.errors import GateFailed
from toolkit.files import atomic_write_text, remove_outputs, sha256_file
from toolkit.governance.policy import Policy, Rule, load_policy
from toolkit.layout import REPORTS, report_path
from toolkit.reports import GateReport, RuleOutcome, digests, write_report
from toolkit.templating import render

GATE_MARKDOWN = REPORTS / "gate.md"
_MISSING = object()
_NULL = object()  # the path runs through a section the report set to null (e.g. no previous release)


def lookup(report: dict, dotted: str) -> Any:
    node: Any = report
    for part in dotted.split("."):
        if part.startswith("{") and part.endswith("}"):
            part = str(report.get(part[1:-1], part))
        if node is None:
            return _NULL
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def compare(op: str, value: Any, threshold: Any) -> bool:
    if op == "required":
        return value not in (None, "", [], {})
    if op == "equals":
        return value == threshold
    if op == "one_of":
        return value in threshold
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    return value >= threshold if op == "min" else value <= threshold


def evaluate_rule(rule: Rule, reports_dir: Path = REPORTS) -> RuleOutcome:
    path = reports_dir / f"{rule.report}.json"
    common = dict(id=rule.id, severity=rule.severity, report=rule.report, field=rule.field, op=rule.op,
                  threshold=rule.threshold, rationale=rule.rationale, allow_skipped=rule.allow_skipped)
    if not path.is_file():
        return RuleOutcome(**common, status="missing", message=f"{path} not found: the stage that writes it did not run")
    report = json.loads(path.read_text(encoding="utf-8"))
    value = lookup(report, rule.field)
    file_info = dict(report_file=path.as_posix(), report_sha256=sha256_file(path))
    if report.get("skipped") is True:
        return RuleOutcome(**common, **file_info, status="skipped",
                           message=f"the tier was skipped: {report.get('skip_reason') or 'no reason given'}")
    if (value is None or value is _NULL) and rule.allow_absent:
        return RuleOutcome(**common, **file_info, status="not_applicable",
                           message="the report records nothing to compare (e.g. no previous release yet)")
    if value is _MISSING or value is _NULL:
        return RuleOutcome(**common, **file_info, status="missing", message=f"{path} has no field {rule.field}")
    ok = compare(rule.op, value, rule.threshold)
    status = "passed" if ok else ("failed" if rule.severity == "block" else "warned")
    return RuleOutcome(**common, **file_info, status=status, value=value)


def run_gate(policy_name: str) -> GateReport:
    remove_outputs(report_path("gate"), headline.path("gate"), GATE_MARKDOWN)   # a gate that cannot run leaves no old "passed"
    policy: Policy = load_policy(policy_name)
    outcomes = [evaluate_rule(rule) for rule in policy.rules]
    blocking = sum(is_blocking(o) for o in outcomes)
    warnings = sum(o.status in ("warned", "missing", "skipped") and not is_blocking(o) for o in outcomes)
    used = sorted({Path(o.report_file) for o in outcomes if o.report_file})
    report = GateReport(
        params={"gate": {"policy": policy_name}},
        inputs=digests([policy.file, *used]),
        policy=policy.name,
        policy_file=policy.file.as_posix(),
        passed=blocking == 0,
        blocking_failures=blocking,
        warnings=warnings,
        rules=outcomes,
    )
    atomic_write_text(GATE_MARKDOWN, render("gate_report.md.j2", gate=report, description=policy.description))
    report.outputs = digests([GATE_MARKDOWN])
    write_report(report, report_path("gate"))
    return report


def is_blocking(outcome: RuleOutcome) -> bool:
    """Failed or missing evidence on a blocking rule blocks; so does a skipped tier unless the rule allows it."""
    if outcome.severity != "block":
        return False
    return outcome.status in ("failed", "missing") or (outcome.status == "skipped" and not outcome.allow_skipped)


def enforce(report: GateReport) -> None:
    if not report.passed:
        failed = [o for o in report.rules if is_blocking(o)]
        names = ", ".join(f"{o.id} ({o.status})" for o in failed)
        raise GateFailed(f"gate failed under policy {report.policy!r}: {names}; see {GATE_MARKDOWN}")
