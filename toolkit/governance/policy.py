"""Policies as code: YAML files in policies/, each a list of rules over report fields.

A rule names a report (reports/<report>.json), a dotted field path in it, a comparison and a
threshold, a severity (block or warn) and a rationale that is printed with the outcome. A path
segment in braces, such as `metrics.{primary_metric}.ci_low`, takes its name from a top-level
string field of the same report. `extends: <policy>` inherits a policy's rules; a rule with the
same id replaces the inherited one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.config import yaml_line
from toolkit.errors import ConfigError
from toolkit.files import parse_yaml
from toolkit.reports import (BaseModelReport, CardReport, CostReport, EvalReport, Report, TrainReport,
                             ValidateReport)

POLICIES_DIR = Path("policies")
OPS = ("min", "max", "equals", "required", "one_of")
SEVERITIES = ("block", "warn")
REPORT_SCHEMAS: dict[str, type[Report]] = {
    "base": BaseModelReport,
    "validate": ValidateReport,
    "train": TrainReport,
    "eval_heldout": EvalReport,
    "cost": CostReport,
    "card": CardReport,
}
_RULE_KEYS = {"id", "report", "field", "op", "threshold", "severity", "rationale"}


@dataclass(frozen=True)
class Rule:
    id: str
    report: str
    field: str
    op: str
    threshold: Any
    severity: str
    rationale: str


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    file: Path
    rules: tuple[Rule, ...]
    required_sections: tuple[str, ...] = ()

    def resolved(self) -> dict:
        """The policy with inherited rules spelled out: what a release bundle keeps."""
        return {"name": self.name, "description": self.description, "source_file": self.file.as_posix(),
                "documentation": {"required_sections": list(self.required_sections)},
                "rules": [rule.__dict__ for rule in self.rules]}


def policy_file(name_or_path: str) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        return candidate
    return POLICIES_DIR / f"{name_or_path}.yaml"


def load_policy(name_or_path: str, _seen: tuple[Path, ...] = ()) -> Policy:
    path = policy_file(name_or_path)
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in POLICIES_DIR.glob("*.yaml"))) or "none"
        raise ConfigError(f"policy not found (known policies: {known})", file=str(path))
    if path.resolve() in _seen:
        raise ConfigError("policy extends itself (circular 'extends')", file=str(path))
    text = path.read_text(encoding="utf-8")
    raw = parse_yaml(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("rules", []), list):
        raise ConfigError("expected a mapping with name, description, optional extends, and a list of rules",
                          file=str(path), line=1)
    unknown = set(raw) - {"name", "description", "extends", "rules", "documentation"}
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError("unknown key", file=str(path), line=yaml_line(text, [key]), key=key)

    rules: dict[str, Rule] = {}
    sections: tuple[str, ...] = ()
    if raw.get("extends"):
        parent = load_policy(str(raw["extends"]), _seen + (path.resolve(),))
        rules = {rule.id: rule for rule in parent.rules}
        sections = parent.required_sections
    documentation = raw.get("documentation") or {}
    if not isinstance(documentation, dict) or not isinstance(documentation.get("required_sections", []), list):
        raise ConfigError("expected documentation: {required_sections: [heading, ...]}", file=str(path),
                          line=yaml_line(text, ["documentation"]), key="documentation")
    if "required_sections" in documentation:
        sections = tuple(str(heading) for heading in documentation["required_sections"])
    for index, item in enumerate(raw.get("rules") or []):
        rule = _parse_rule(item, index, path, text)
        rules[rule.id] = rule
    if not rules:
        raise ConfigError("the policy has no rules", file=str(path), line=1)
    return Policy(str(raw.get("name") or path.stem), str(raw.get("description", "")), path, tuple(rules.values()),
                  sections)


def _parse_rule(item: Any, index: int, path: Path, text: str) -> Rule:
    key = f"rules[{index}]"

    def fail(message: str, field: str | None = None) -> ConfigError:
        rule_id = item.get("id") if isinstance(item, dict) else None
        where = f"{key} ({rule_id})" if rule_id else key
        line = yaml_line(text, ["rules", str(index)] + ([field] if field else []))
        return ConfigError(message, file=str(path), line=line, key=f"{where}.{field}" if field else where)

    if not isinstance(item, dict):
        raise fail("expected a mapping with id, report, field, op, threshold, severity, rationale")
    unknown = set(item) - _RULE_KEYS
    if unknown:
        raise fail(f"unknown key(s) {sorted(unknown)}; a rule has {sorted(_RULE_KEYS)}")
    for required in ("id", "report", "field", "op", "rationale"):
        if not item.get(required):
            raise fail("missing", required)
    if item["report"] not in REPORT_SCHEMAS:
        raise fail(f"unknown report {item['report']!r}; known: {', '.join(REPORT_SCHEMAS)}", "report")
    first = str(item["field"]).split(".")[0]
    if first not in REPORT_SCHEMAS[item["report"]].model_fields:
        raise fail(f"report {item['report']!r} has no field {first!r}", "field")
    if item["op"] not in OPS:
        raise fail(f"unknown comparison {item['op']!r}; expected one of {', '.join(OPS)}", "op")
    if item["op"] != "required" and "threshold" not in item:
        raise fail(f"comparison {item['op']!r} needs a threshold", "threshold")
    if item["op"] in ("min", "max") and not isinstance(item["threshold"], (int, float)):
        raise fail(f"expected a number for {item['op']!r}, got {item['threshold']!r}", "threshold")
    if item["op"] == "one_of" and not isinstance(item["threshold"], list):
        raise fail("expected a list for 'one_of'", "threshold")
    severity = item.get("severity", "block")
    if severity not in SEVERITIES:
        raise fail(f"expected one of {', '.join(SEVERITIES)}, got {severity!r}", "severity")
    return Rule(str(item["id"]), item["report"], str(item["field"]), item["op"], item.get("threshold"),
                severity, str(item["rationale"]).strip())
