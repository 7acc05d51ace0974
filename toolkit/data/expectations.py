"""Runs a Great Expectations suite (kept as YAML in policies/data_suites/) on canonical records.

GX checks columns, so each record becomes one row of derived columns (roles, last role, empty
turns, longest turn in tokens, turn count, whether a preference pair's answers differ); the row
index is the record's line number, so every failure maps back to file and line. The suite is
chosen by the kind of data: chat_sft, preference or kto.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.config import Params
from toolkit.data.formats import Record
from toolkit.errors import ConfigError, InternalError
from toolkit.files import parse_yaml
from toolkit.reports import ExpectationResult

SUITES_DIR = Path("policies/data_suites")
SUITE_FOR_KIND = {"sft": "chat_sft", "preference": "preference", "kto": "kto"}
MAX_EXAMPLE_LINES = 10   # failing lines the report lists per expectation
_PARAM_REF = re.compile(r"^\$\{([a-z_][a-z0-9_.]*)\}$")


@dataclass(frozen=True)
class ExpectationSpec:
    type: str
    id: str
    description: str
    field: str
    kwargs: dict


class ExpectationOutcome(ExpectationResult):
    """An expectation's result as the report shows it (the first failing lines as examples), plus
    every failing line and the derived column checked, which the report leaves out."""
    failing_lines: list[int] = []
    column: str = ""     # the derived column checked (max_turn_tokens, empty_turns, ...)

    @classmethod
    def of(cls, spec: ExpectationSpec, success: bool, unexpected_count: int = 0, failing_lines: list[int] = (),
           column: str = "") -> ExpectationOutcome:
        return cls(id=spec.id, type=spec.type, description=spec.description, field=spec.field, success=success,
                   unexpected_count=unexpected_count, example_lines=list(failing_lines[:MAX_EXAMPLE_LINES]),
                   failing_lines=list(failing_lines), column=column)


def expectation_suite_path(name_or_path: str) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml"):
        return candidate
    return SUITES_DIR / f"{name_or_path}.yaml"


def load_expectations(path: Path, params: Params) -> list[ExpectationSpec]:
    if not path.is_file():
        raise ConfigError("data expectation suite not found", file=str(path))
    raw = parse_yaml(path) or {}
    items = raw.get("expectations") if isinstance(raw, dict) else None
    if not isinstance(items, list) or not items:
        raise ConfigError("expected a mapping with a non-empty 'expectations' list", file=str(path), line=1)
    from great_expectations import expectations as gxe

    specs = []
    for index, item in enumerate(items):
        key = f"expectations[{index}]"
        if not isinstance(item, dict) or not {"type", "id", "kwargs"} <= set(item):
            raise ConfigError("each expectation needs type, id and kwargs", file=str(path), key=key)
        if not hasattr(gxe, str(item["type"])):
            raise ConfigError(f"unknown Great Expectations class {item['type']!r}", file=str(path), key=f"{key}.type")
        kwargs = {name: _resolve(value, params, path, f"{key}.kwargs.{name}") for name, value in item["kwargs"].items()}
        specs.append(ExpectationSpec(item["type"], str(item["id"]), str(item.get("description", "")),
                                     str(item.get("field", kwargs.get("column", ""))), kwargs))
    return specs


def _resolve(value: Any, params: Params, path: Path, key: str) -> Any:
    match = _PARAM_REF.match(value) if isinstance(value, str) else None
    if not match:
        return value
    node: Any = params
    for part in match.group(1).split("."):
        if not hasattr(node, part):
            raise ConfigError(f"refers to unknown parameter {match.group(1)!r}", file=str(path), key=key)
        node = getattr(node, part)
    return node


class DerivedColumns:
    """The derived columns of every record, gathered chunk by chunk (a role sequence is kept once)."""

    def __init__(self):
        self.columns: dict[str, list] = {name: [] for name in ("line", "roles", "last_role", "empty_turns",
                                                               "max_turn_tokens", "n_messages", "answers_differ", "label")}
        self._strings: dict[str, str] = {}

    def add(self, record: Record, longest_turn_tokens: int) -> None:
        roles = [m["role"] for m in record.conversations()[0]]
        joined = ",".join(roles)
        columns = self.columns
        columns["line"].append(record.line)
        columns["roles"].append(self._strings.setdefault(joined, joined))
        columns["last_role"].append(roles[-1])
        columns["empty_turns"].append(sum(1 for _, text in record.texts() if not text.strip()))
        columns["max_turn_tokens"].append(longest_turn_tokens)
        columns["n_messages"].append(len(roles))
        columns["answers_differ"].append(record.chosen != record.rejected if record.kind == "preference" else True)
        columns["label"].append(record.label)

    def __len__(self) -> int:
        return len(self.columns["line"])

    def frame(self):
        import pandas as pd

        return pd.DataFrame(self.columns).set_index("line", drop=False)


def run_expectations(columns: DerivedColumns, specs: list[ExpectationSpec], suite_name: str) -> list[ExpectationOutcome]:
    if not len(columns):
        return [ExpectationOutcome.of(s, True) for s in specs]
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations import expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig

    frame = columns.frame()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_definition = (
        context.data_sources.add_pandas("records")
        .add_dataframe_asset("chat_records")
        .add_batch_definition_whole_dataframe("all")
    )
    suite = context.suites.add(gx.ExpectationSuite(name=suite_name))
    for spec in specs:
        suite.add_expectation(getattr(gxe, spec.type)(**spec.kwargs))
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{suite_name}-validation", data=batch_definition, suite=suite))
    result = validation.run(batch_parameters={"dataframe": frame}, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["line"]})

    outcomes = []
    # GX returns results in the order the expectations were added; the column check guards that.
    for spec, item in zip(specs, result.results, strict=True):
        if item.expectation_config.kwargs.get("column") != spec.kwargs.get("column"):
            raise InternalError("Great Expectations returned its results out of order; the data report cannot "
                                "say which expectation failed")
        details = item.result or {}
        failing = sorted(int(row["line"]) for row in details.get("unexpected_index_list") or [])
        outcomes.append(ExpectationOutcome.of(spec, bool(item.success), int(details.get("unexpected_count") or 0),
                                              failing, str(spec.kwargs.get("column", ""))))
    return outcomes
