"""Policies as code: YAML files in policies/, each a list of rules over report fields.

A rule names a report (reports/<report>.json), a dotted field path in it, a comparison and a
threshold, a severity (block or warn) and a rationale that is printed with the outcome. A path
segment in braces, such as `metrics.{primary_metric}.ci_low`, takes its name from a top-level
string field of the same report. `extends: <policy>` inherits a policy's rules; a rule with the
same id replaces the inherited one.
"""

from __future__ import annotations

import re

import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

from toolkit.config import yaml_line
from toolkit.errors import ConfigError
from toolkit.files import parse_yaml
from toolkit.reports import (BaseModelReport, CardReport, CostReport, EvalReport, JudgeReport, Report,
                             TrainReport, ValidateReport)

POLICIES_DIR = Path("policies")
OPS = ("min", "max", "equals", "required", "one_of")
SEVERITIES = ("block", "warn")
REPORT_SCHEMAS: dict[str, type[Report]] = {
    "base": BaseModelReport,
    "validate": ValidateReport,
    "train": TrainReport,
    "eval_heldout": EvalReport,
    "eval_ood": EvalReport,
    "eval_canary": EvalReport,
    "eval_general": EvalReport,
    "eval_judge": JudgeReport,
    "cost": CostReport,
    "card": CardReport,
}
REPORT_ALIASES = {"eval_mmlu": "eval_general"}   # the general tier's report before it was renamed
_RULE_KEYS = {"id", "report", "field", "op", "threshold", "severity", "rationale", "allow_skipped", "allow_absent"}


@dataclass(frozen=True)
class Rule:
    id: str
    report: str
    field: str
    op: str
    threshold: Any
    severity: str
    rationale: str
    allow_skipped: bool = False
    # A field the report sets to null on purpose (the canary's comparison with the previous release,
    # before there is one) is `not_applicable` rather than `missing`.
    allow_absent: bool = False


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    file: Path
    rules: tuple[Rule, ...]
    required_sections: tuple[str, ...] = ()
    required_governance: tuple[str, ...] = ()
    require_signature: bool = False     # release: only signed releases (an Ed25519 key configured)

    def resolved(self) -> dict:
        """The policy with inherited rules spelled out: what a release bundle keeps."""
        return {"name": self.name, "description": self.description, "source_file": self.file.as_posix(),
                "documentation": {"required_sections": list(self.required_sections),
                                  "required_governance": list(self.required_governance)},
                "release": {"require_signature": self.require_signature},
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
    raw = parse_yaml(path)   # first: it names the file and line of bytes that are not UTF-8
    text = path.read_text(encoding="utf-8")
    if not isinstance(raw, dict) or not isinstance(raw.get("rules", []), list):
        raise ConfigError("expected a mapping with name, description, optional extends, and a list of rules",
                          file=str(path), line=1)
    unknown = set(raw) - {"name", "description", "extends", "rules", "documentation", "release"}
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError("unknown key", file=str(path), line=yaml_line(text, [key]), key=key)

    rules: dict[str, Rule] = {}
    sections: tuple[str, ...] = ()
    governance: tuple[str, ...] = ()
    require_signature = False
    if raw.get("extends"):
        parent = load_policy(str(raw["extends"]), _seen + (path.resolve(),))
        rules = {rule.id: rule for rule in parent.rules}
        sections, governance = parent.required_sections, parent.required_governance
        require_signature = parent.require_signature
    release = raw.get("release") or {}
    if (not isinstance(release, dict) or set(release) - {"require_signature"}
            or not isinstance(release.get("require_signature", False), bool)):
        raise ConfigError("expected release: {require_signature: true or false}", file=str(path),
                          line=yaml_line(text, ["release"]), key="release")
    # Like documentation, a child policy can tighten the parent's release rule but never loosen it.
    require_signature = require_signature or bool(release.get("require_signature", False))
    documentation = raw.get("documentation") or {}
    if (not isinstance(documentation, dict) or set(documentation) - {"required_sections", "required_governance"}
            or not all(isinstance(documentation.get(k, []), list) for k in ("required_sections", "required_governance"))):
        raise ConfigError("expected documentation: {required_sections: [heading, ...], required_governance: [field, ...]}",
                          file=str(path), line=yaml_line(text, ["documentation"]), key="documentation")
    # A child policy adds to its parent's documentation requirements; it never silently drops one.
    sections += tuple(str(h) for h in documentation.get("required_sections", []) if str(h) not in sections)
    from toolkit.config import GovernanceParams

    for index, name in enumerate(documentation.get("required_governance", [])):
        if name not in GovernanceParams.model_fields:
            raise ConfigError(f"unknown governance field {name!r}", file=str(path),
                              line=yaml_line(text, ["documentation", "required_governance", str(index)]),
                              key=f"documentation.required_governance[{index}]")
        if name not in governance:
            governance += (str(name),)
    own_ids: dict[str, int] = {}
    for index, item in enumerate(raw.get("rules") or []):
        rule = _parse_rule(item, index, path, text)
        if rule.id in own_ids:   # replacing an inherited rule is fine; two in one file is a mistake
            raise ConfigError(f"rule id {rule.id!r} is used twice in this policy (first as rules[{own_ids[rule.id]}]); "
                              "the second would silently replace the first", file=str(path),
                              line=yaml_line(text, ["rules", str(index)]), key=f"rules[{index}].id")
        own_ids[rule.id] = index
        rules[rule.id] = rule
    if not rules:
        raise ConfigError("the policy has no rules", file=str(path), line=1)
    return Policy(str(raw.get("name") or path.stem), str(raw.get("description", "")), path, tuple(rules.values()),
                  sections, governance, require_signature)


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
    item = {**item, "report": REPORT_ALIASES.get(item["report"], item["report"])}
    schema = report_schema(str(item["report"]))
    if schema is None:
        raise fail(f"unknown report {item['report']!r}; known: {', '.join(REPORT_SCHEMAS)}, "
                   "or eval_NAME for a custom suite", "report")
    unknown_part = unknown_field(schema, str(item["field"]).split("."))
    if unknown_part is not None:
        raise fail(f"report {item['report']!r} has no field {item['field']!r} (no {unknown_part!r} there)", "field")
    for flag in ("allow_skipped", "allow_absent"):
        if not isinstance(item.get(flag, False), bool):
            raise fail("expected true or false", flag)
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
                severity, str(item["rationale"]).strip(), bool(item.get("allow_skipped", False)),
                bool(item.get("allow_absent", False)))


def report_schema(name: str) -> type[Report] | None:
    """The schema of a report a rule may name; `eval_NAME` is any custom suite's metrics tier."""
    if name in REPORT_SCHEMAS:
        return REPORT_SCHEMAS[name]
    return EvalReport if re.fullmatch(r"eval_[a-z][a-z0-9_]*", name) else None


def unknown_field(schema: type, parts: list[str]) -> str | None:
    """The first segment of a dotted field path that the report schema does not have, or None.
    Segments under a dict take any key (and "{placeholder}"); under Any nothing more is checked."""
    annotation: Any = schema
    for part in parts:
        while get_origin(annotation) in (Union, types.UnionType):  # Optional[X] -> X
            annotation = next(a for a in get_args(annotation) if a is not type(None))
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if part not in annotation.model_fields:
                return part
            annotation = annotation.model_fields[part].annotation
        elif get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
        elif get_origin(annotation) is list:
            if not part.lstrip("-").isdigit():
                return part
            annotation = get_args(annotation)[0]
        elif annotation is Any:
            return None
        else:
            return part  # a number or a string has no fields
    return None
