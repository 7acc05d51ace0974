"""Tool (function) calling data: the two layouts that carry it, and the checks on the calls.

Canonical form (what transformers chat templates take through `apply_chat_template(..., tools=)`):
- an assistant turn may carry `tool_calls`: [{"type": "function", "function": {"name", "arguments"}}]
  (plus the call's "id" where the data gives one); `arguments` is a JSON object, kept as the raw
  text where it does not parse so that the check below can name it;
- a tool's result is a turn {"role": "tool", "content": ...} (plus "tool_call_id" / "name" if given);
- the record's `tools` is a list of {"type": "function", "function": {"name", "description",
  "parameters"}} definitions.

Accepted from OpenAI chat (`tool_calls` whose arguments are a JSON string, `tool` turns, `tools`) and
from ShareGPT as LLaMA-Factory writes it (`function_call` turns whose value is a JSON call or list of
calls, `observation` turns, `tools` as a list or a JSON string of one, functions bare or wrapped).

The structure (lists, objects, names present) is checked while reading, as for every layout. What a
call says is a data finding of the validate stage (`check`): arguments that are not a JSON object,
a tool that is not declared, a call in a record that declares no tools, a tool result with no call
before it. Training on such a record teaches the model to make calls that fail.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple


class ToolStructureProblem(Exception):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def tools_definitions(value: Any, where: str = "tools") -> list[dict] | None:
    """The record's tool definitions in the OpenAI form, or None when it declares none."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ToolStructureProblem(where, f"a JSON string of tool definitions that does not parse: {exc.msg} "
                                       f"(column {exc.colno})") from None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise ToolStructureProblem(where, f"expected a list of tool definitions, got {type(value).__name__}")
    tools = []
    for index, tool in enumerate(value):
        function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else tool
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise ToolStructureProblem(f"{where}[{index}]", 'expected a function definition {"name": ..., '
                                       '"description": ..., "parameters": {...}} (bare or under "function")')
        tools.append({"type": "function", "function": function})
    return tools


def openai_tool_calls(value: Any, where: str) -> list[dict]:
    """An OpenAI assistant turn's `tool_calls`, arguments decoded where they parse."""
    if not isinstance(value, list) or not value:
        raise ToolStructureProblem(where, "expected a non-empty list of tool calls")
    calls = []
    for index, call in enumerate(value):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise ToolStructureProblem(f"{where}[{index}]", 'expected {"type": "function", "function": '
                                       '{"name": ..., "arguments": ...}}')
        calls.append(_call(function["name"], function.get("arguments", {}), call.get("id")))
    return calls


def sharegpt_tool_calls(value: Any) -> list[dict]:
    """A ShareGPT `function_call` turn's value: one call or a list of calls as JSON text. Text that
    does not parse is kept (name unknown) for the check to report."""
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            return [_call("", value)]
    else:
        decoded = value
    decoded = decoded if isinstance(decoded, list) else [decoded]
    calls = []
    for call in decoded:
        if isinstance(call, dict) and isinstance(call.get("name"), str):
            calls.append(_call(call["name"], call.get("arguments", call.get("parameters", {}))))
        else:
            calls.append(_call("", json.dumps(call, ensure_ascii=False)))
    return calls


def _call(name: str, arguments: Any, call_id: Any = None) -> dict:
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError:
            pass   # kept as text: the check names it
    call = {"type": "function", "function": {"name": name, "arguments": arguments}}
    if isinstance(call_id, str):
        call["id"] = call_id
    return call


def arguments_text(arguments: Any) -> str:
    """A call's arguments as text (scanned for personal data, counted, compared)."""
    return arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)


def call_text(message: dict) -> str:
    """An assistant turn as a reference answer: its text, else its calls, one JSON object per line."""
    if message.get("content", "").strip() or not message.get("tool_calls"):
        return message.get("content", "")
    return "\n".join(json.dumps({"name": c["function"]["name"], "arguments": c["function"]["arguments"]},
                                ensure_ascii=False) for c in message["tool_calls"])


class Finding(NamedTuple):
    field: str      # canonical field
    reason: str     # a short code, counted in the report
    message: str


def check(messages: list[dict], tools: list[dict] | None) -> list[Finding]:
    """Every call that would fail when a runtime executes it, and every result without a call."""
    declared = [t["function"]["name"] for t in tools or []]
    findings, calls_seen = [], 0
    for i, message in enumerate(messages):
        if message["role"] == "tool" and not calls_seen:
            findings.append(Finding(f"messages[{i}].content", "result_without_call",
                                    "a tool result with no tool call before it"))
        for j, call in enumerate(message.get("tool_calls") or []):
            calls_seen += 1
            where, function = f"messages[{i}].tool_calls[{j}].function", call["function"]
            name, arguments = function["name"], function["arguments"]
            if not name:
                findings.append(Finding(f"{where}.arguments", "not_a_call", 'not a tool call {"name": ..., '
                                        f'"arguments": {{...}}}}: {_decode_error(arguments_text(arguments))}'))
            elif isinstance(arguments, str):
                findings.append(Finding(f"{where}.arguments", "arguments_not_json",
                                        f"the arguments of the call to {name!r} are not valid JSON: {_decode_error(arguments)}"))
            elif not isinstance(arguments, dict):
                findings.append(Finding(f"{where}.arguments", "arguments_not_object", f"the arguments of the call to "
                                        f"{name!r} must be a JSON object, got {type(arguments).__name__}"))
            elif not declared:
                findings.append(Finding(f"{where}.name", "no_tools_declared", f"calls {name!r} but the record declares "
                                        "no tools (add a tools field with the functions the model may call)"))
            elif name not in declared:
                findings.append(Finding(f"{where}.name", "undeclared_tool", f"calls {name!r}, which is not among the "
                                        f"declared tools ({', '.join(declared)})"))
    return findings


def _decode_error(text: str) -> str:
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return f"{exc.msg} (column {exc.colno}) in {text[:60]!r}"
    return f"got {text[:60]!r}"
