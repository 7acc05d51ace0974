"""Evaluation suites are data: `eval_suites/<name>/suite.yaml` plus a JSONL file of items.

suite.yaml:

    tier: ood                     # heldout | ood | canary | any other name for a custom suite
    description: ...
    items: items.jsonl            # relative to the suite folder, or "split:heldout" (the validated split)
    primary_metric: field_accuracy
    max_new_tokens: 64
    metrics:                      # name -> arguments; `metric:` picks the implementation (default: the name)
      field_accuracy: {}
      ticket_schema: {metric: json_schema, schema_file: ticket.schema.json}
      no_injection: {metric: not_contains, text: PWNED}
      mine: {metric: my_package.metrics:score}
    few_shot:                     # turns put before the item's first user turn for the prompted baseline
      - {role: user, content: ...}
      - {role: assistant, content: ...}

An item: {"id": "...", "category": "...", "messages": [...] | "prompt": "...", "reference": "...",
"metrics": [names that apply; default all], "args": {metric name: {argument overrides}},
"few_shot": false (no examples for this item)}. Every problem is reported with file, line and field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from toolkit.config import parse_yaml, validation_error, yaml_line
from toolkit.data.tool_calls import call_text
from toolkit.errors import ConfigError, DataError
from toolkit.scoring.metrics import Metric, check_arguments, get_metric
from toolkit.evals.preference import METRICS as PREFERENCE_METRICS
from toolkit.layout import SPLIT_FILES

SUITES_DIR = Path("eval_suites")
SUITE_FILE = "suite.yaml"
ROLES = ("system", "user", "assistant")


class _SuiteSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    items: str
    primary_metric: str
    max_new_tokens: int = Field(64, ge=1, le=4096)
    metrics: dict[str, dict[str, Any]] = Field(min_length=1)
    few_shot: list[dict[str, str]] = []


@dataclass(frozen=True)
class SuiteMetric:
    name: str          # as the suite names it (the report's key)
    metric: Metric     # the implementation
    args: dict[str, Any]


@dataclass(frozen=True)
class SuiteItem:
    id: str
    line: int
    messages: list[dict[str, str]]
    reference: str | None
    metrics: tuple[str, ...]
    args: dict[str, dict[str, Any]]
    few_shot: bool
    category: str | None = None
    # Held-out preference or KTO records (toolkit.evals.preference scores the answers' likelihoods).
    chosen: str | None = None
    rejected: str | None = None
    completion: str | None = None
    label: bool | None = None
    tools: list[dict] | None = None   # the functions a tool-calling item may call (in its prompt)


@dataclass(frozen=True)
class Suite:
    name: str
    folder: Path
    tier: str
    description: str
    items_file: Path
    primary_metric: str
    max_new_tokens: int
    metrics: dict[str, SuiteMetric]
    few_shot: list[dict[str, str]] = field(default_factory=list)

    @property
    def spec_file(self) -> Path:
        return self.folder / SUITE_FILE

    def load_items(self, limit: int | None = None) -> list[SuiteItem]:
        items = (_split_items(self) if self.items_file in SPLIT_FILES.values() else _suite_items(self))
        if not items:
            raise DataError("the suite has no items", file=str(self.items_file))
        return items[:limit]


def discover_suites(root: Path = SUITES_DIR) -> dict[str, Path]:
    """Every suite folder below `root`: name -> folder."""
    return {path.parent.name: path.parent for path in sorted(root.glob(f"*/{SUITE_FILE}"))}


def load_suite(name: str, root: Path = SUITES_DIR) -> Suite:
    folders = discover_suites(root)
    if name not in folders:
        known = ", ".join(folders) or "none"
        raise ConfigError(f"no evaluation suite {name!r} (a folder with {SUITE_FILE}); known: {known}", file=str(root))
    return parse_suite(folders[name])


def parse_suite(folder: Path) -> Suite:
    spec_file = folder / SUITE_FILE
    source = str(spec_file)
    raw = parse_yaml(spec_file)   # first: it names the file and line of bytes that are not UTF-8
    text = spec_file.read_text(encoding="utf-8")
    if not isinstance(raw, dict):
        raise ConfigError("expected a mapping (tier, items, primary_metric, metrics, ...)", file=source, line=1)
    try:
        spec = _SuiteSpec.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc, source, text, suggest_from=_SuiteSpec) from None

    metrics = {}
    for name, settings in spec.metrics.items():
        line = yaml_line(text, ["metrics", name])
        settings = dict(settings or {})
        metric = get_metric(str(settings.pop("metric", name)), source, line)
        if "schema_file" in settings:
            settings["schema"] = _json_file(folder / settings.pop("schema_file"), source, line)
        check_arguments(metric, settings, source, line, partial=True)
        metrics[name] = SuiteMetric(name, metric, settings)
    if spec.primary_metric not in metrics and spec.primary_metric not in PREFERENCE_METRICS:
        raise ConfigError(f"primary_metric {spec.primary_metric!r} is not one of the suite's metrics "
                          f"({', '.join(metrics)}) nor a preference metric ({', '.join(PREFERENCE_METRICS)})",
                          file=source, line=yaml_line(text, ["primary_metric"]), key="primary_metric")
    for index, turn in enumerate(spec.few_shot):
        if set(turn) != {"role", "content"} or turn["role"] not in ROLES:
            raise ConfigError("each few-shot turn needs exactly role (system, user or assistant) and content",
                              file=source, line=yaml_line(text, ["few_shot", str(index)]), key=f"few_shot.{index}")
    items_file = (SPLIT_FILES[spec.items.split(":", 1)[1]] if spec.items.startswith("split:")
                  and spec.items.split(":", 1)[1] in SPLIT_FILES else folder / spec.items)
    if spec.items.startswith("split:") and items_file.parent == folder:
        raise ConfigError(f"unknown split in {spec.items!r}; known: {', '.join(SPLIT_FILES)}", file=source,
                          line=yaml_line(text, ["items"]), key="items")
    return Suite(folder.name, folder, spec.tier, spec.description, items_file, spec.primary_metric,
                 spec.max_new_tokens, metrics, spec.few_shot)


def _json_file(path: Path, source: str, line: int | None) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"schema_file {path} not found", file=source, line=line) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"schema_file {path} is not JSON: {exc}", file=source, line=line) from None


def _split_items(suite: Suite) -> list[SuiteItem]:
    """Items from a validated split: the conversation up to the last assistant turn, which is the reference."""
    if not suite.items_file.is_file():
        raise DataError("the split does not exist; run the validate stage first", file=str(suite.items_file))
    items = []
    with suite.items_file.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            row, item_id = json.loads(line), f"{suite.items_file.stem}-{line_no}"
            if "messages" in row:            # SFT: the last assistant turn (its text, or its calls) is the reference
                items.append(SuiteItem(item_id, line_no, row["messages"][:-1], call_text(row["messages"][-1]),
                                       tuple(suite.metrics), {}, True, tools=row.get("tools")))
            elif "chosen" in row:            # preference: the chosen answer is the reference
                chosen, rejected = row["chosen"][-1]["content"], row["rejected"][-1]["content"]
                items.append(SuiteItem(item_id, line_no, row["prompt"], chosen, tuple(suite.metrics), {}, True,
                                       chosen=chosen, rejected=rejected))
            else:                            # KTO: a desirable completion is a reference, an undesirable one not
                completion, label = row["completion"][-1]["content"], bool(row["label"])
                items.append(SuiteItem(item_id, line_no, row["prompt"], completion if label else None,
                                       tuple(suite.metrics) if label else (), {}, True, completion=completion,
                                       label=label))
    return items


def _suite_items(suite: Suite) -> list[SuiteItem]:
    source = str(suite.items_file)
    if not suite.items_file.is_file():
        raise ConfigError(f"items file {suite.items_file} not found", file=str(suite.spec_file), key="items")
    items, seen = [], {}
    with suite.items_file.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            item = _parse_item(line, line_no, source, suite)
            if item.id in seen:
                raise DataError(f"duplicate id {item.id!r} (first on line {seen[item.id]})", file=source,
                                line=line_no, field="id")
            seen[item.id] = line_no
            items.append(item)
    return items


_ITEM_KEYS = {"id", "category", "messages", "prompt", "reference", "metrics", "args", "few_shot"}


def _parse_item(line: str, line_no: int, source: str, suite: Suite) -> SuiteItem:
    def fail(message: str, field_name: str | None = None) -> DataError:
        return DataError(message, file=source, line=line_no, field=field_name)

    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise fail(f"not valid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(raw, dict):
        raise fail("an item must be a JSON object")
    unknown = sorted(set(raw) - _ITEM_KEYS)
    if unknown:
        raise fail(f"unknown key; an item has {', '.join(sorted(_ITEM_KEYS))}", unknown[0])
    if ("messages" in raw) == ("prompt" in raw):
        raise fail("an item needs exactly one of messages (a conversation) or prompt (a string)", "messages")
    if "prompt" in raw:
        if not isinstance(raw["prompt"], str):
            raise fail("must be a string", "prompt")
        messages = [{"role": "user", "content": raw["prompt"]}]
    else:
        messages = raw["messages"]
        if not isinstance(messages, list) or not messages:
            raise fail("must be a non-empty list of {role, content} turns", "messages")
        for index, turn in enumerate(messages):
            if not isinstance(turn, dict) or set(turn) != {"role", "content"} or turn.get("role") not in ROLES \
                    or not isinstance(turn.get("content"), str):
                raise fail("each turn needs exactly role (system, user or assistant) and content (a string)",
                           f"messages[{index}]")
        if messages[-1]["role"] != "user":
            raise fail("the last turn must be the user's (the model answers it)", f"messages[{len(messages) - 1}]")
    reference = raw.get("reference")
    if reference is not None and not isinstance(reference, str):
        raise fail("must be a string (the expected answer)", "reference")
    names = raw.get("metrics", list(suite.metrics))
    if not isinstance(names, list) or not names:
        raise fail("must be a non-empty list of the suite's metric names", "metrics")
    for name in names:
        if name not in suite.metrics:
            raise fail(f"{name!r} is not one of the suite's metrics ({', '.join(suite.metrics)})", "metrics")
    args = raw.get("args", {})
    if not isinstance(args, dict) or not all(isinstance(v, dict) for v in args.values()):
        raise fail("must map metric names to argument objects", "args")
    for name in args:
        if name not in names:
            raise fail(f"arguments for {name!r}, which does not apply to this item", "args")
    for name in names:
        try:
            check_arguments(suite.metrics[name].metric, {**suite.metrics[name].args, **args.get(name, {})},
                            source, line_no)
        except ConfigError as exc:
            raise fail(str(exc).split(": ", 1)[-1], f"args.{name}") from None
    for name in names:
        if suite.metrics[name].metric.needs_reference and reference is None:
            raise fail(f"metric {name} needs a reference answer", "reference")
    few_shot = raw.get("few_shot", True)
    if not isinstance(few_shot, bool):
        raise fail("must be true or false", "few_shot")
    item_id = raw.get("id", f"{suite.name}-{line_no}")
    if not isinstance(item_id, str) or not item_id:
        raise fail("must be a non-empty string", "id")
    category = raw.get("category")
    if category is not None and not isinstance(category, str):
        raise fail("must be a string", "category")
    return SuiteItem(item_id, line_no, messages, reference, tuple(names), args, few_shot, category)


def with_few_shot(messages: list[dict[str, str]], examples: list[dict[str, str]]) -> list[dict[str, str]]:
    """The conversation with the example turns placed after its system turns (the prompted baseline)."""
    head = 0
    while head < len(messages) and messages[head]["role"] == "system":
        head += 1
    return [*messages[:head], *examples, *messages[head:]]
