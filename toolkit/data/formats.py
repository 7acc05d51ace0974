"""Input layouts of fine-tuning data, detected per record and normalized to one canonical record.

Layouts (the `data.format` names in brackets):
- chat [chat]: {"messages": [{"role", "content"}, ...]}, OpenAI style, optional system turn;
- sharegpt [sharegpt]: {"conversations": [{"from": "human"|"gpt"|"system", "value"}, ...]};
- alpaca [alpaca]: {"instruction", "input" (optional), "output", "system" (optional)};
- prompt_completion [prompt_completion]: {"prompt", "completion"};
- preference [preference]: {"prompt", "chosen", "rejected"}, or a conversation under "messages"
  (chat_preference) or "conversations" (sharegpt_preference) plus "chosen" and "rejected" answers;
- kto [kto]: {"prompt" | "messages" | "conversations", "completion", "label": bool}, or a
  conversation under "messages" (chat_kto) or "conversations" (sharegpt_kto) whose last turn is
  the assistant's completion, plus "label" (the layout of TRL's conversational KTO datasets).

Tool (function) calling data is part of the chat and sharegpt layouts: assistant `tool_calls` and
`tool` turns (OpenAI), `function_call` and `observation` turns (ShareGPT), and a `tools` field with
the functions the model may call; see toolkit.data.tool_calls for the canonical form and the checks.

A turn's content may also be a list of typed parts, as the OpenAI API and multimodal chat
templates take it ([{"type": "text", "text": ...}, ...]): the text parts are joined as chat templates
join them (one after the other, nothing between); an image, audio or file part is refused, naming
the record and the part, since the adapters this toolkit trains are text-only.

Every layout becomes a `Record` of one of three kinds: sft (a conversation ending with the
assistant's answer), preference (a prompt conversation with a chosen and a rejected answer) or kto
(a prompt conversation with one answer labelled desirable or not). A structural problem is returned
as (field, message) naming the field as the input file spells it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from toolkit.data.tool_calls import (ToolStructureProblem, arguments_text, openai_tool_calls, sharegpt_tool_calls,
                                     tools_definitions)

ROLES = ("system", "user", "assistant")
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}
TOOL_ROLES = {"tool": "tool"}                                               # chat, with tools
SHAREGPT_TOOL_ROLES = {"function_call": "assistant", "observation": "tool"}  # sharegpt, with tools (LLaMA-Factory)

KIND_OF_LAYOUT = {
    "chat": "sft", "sharegpt": "sft", "alpaca": "sft", "prompt_completion": "sft",
    "preference": "preference", "chat_preference": "preference", "sharegpt_preference": "preference",
    "kto": "kto", "chat_kto": "kto", "sharegpt_kto": "kto",
}
# data.format names -> the layouts each accepts
FORMATS = {
    "chat": ("chat",), "sharegpt": ("sharegpt",), "alpaca": ("alpaca",), "prompt_completion": ("prompt_completion",),
    "preference": ("preference", "chat_preference", "sharegpt_preference"), "kto": ("kto", "chat_kto", "sharegpt_kto"),
}
EXAMPLES = {
    "chat": '{"messages": [{"role": "user", "content": ...}, {"role": "assistant", "content": ...}]}',
    "sharegpt": '{"conversations": [{"from": "human", "value": ...}, {"from": "gpt", "value": ...}]}',
    "alpaca": '{"instruction": ..., "input": ..., "output": ...}',
    "prompt_completion": '{"prompt": ..., "completion": ...}',
    "preference": '{"prompt": ..., "chosen": ..., "rejected": ...}',
    "chat_preference": '{"messages": [...], "chosen": ..., "rejected": ...}',
    "sharegpt_preference": '{"conversations": [...], "chosen": ..., "rejected": ...}',
    "kto": '{"prompt": ..., "completion": ..., "label": true}',
    "chat_kto": '{"messages": [..., {"role": "assistant", "content": ...}], "label": true}',
    "sharegpt_kto": '{"conversations": [..., {"from": "gpt", "value": ...}], "label": true}',
}
TEXT_PART_TYPES = ("text", "input_text", "output_text")   # OpenAI chat, Responses input and output


class LayoutProblem(Exception):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


@dataclass
class Record:
    """One canonical record. `messages` is the whole conversation for sft, the prompt otherwise."""

    line: int
    layout: str
    messages: list[dict]
    chosen: str | None = None
    rejected: str | None = None
    completion: str | None = None
    label: bool | None = None
    tools: list[dict] | None = None     # function definitions a tool-calling conversation may use

    @property
    def kind(self) -> str:
        return KIND_OF_LAYOUT[self.layout]

    def conversations(self) -> list[list[dict]]:
        """The full conversations a trainer sees (two for a preference pair)."""
        if self.kind == "sft":
            return [self.messages]
        answers = [self.chosen, self.rejected] if self.kind == "preference" else [self.completion]
        return [self.messages + [{"role": "assistant", "content": answer}] for answer in answers]

    def texts(self) -> list[tuple[str, str]]:
        """(canonical field, text) of every piece of text in the record."""
        texts = []
        for i, message in enumerate(self.messages):
            calls = message.get("tool_calls") or []
            if message["content"] or not calls:   # a turn that only calls a tool has no text of its own
                texts.append((f"messages[{i}].content", message["content"]))
            texts += [(f"messages[{i}].tool_calls[{j}].function.arguments", arguments_text(c["function"]["arguments"]))
                      for j, c in enumerate(calls)]
        for name in ("chosen", "rejected", "completion"):
            if getattr(self, name) is not None:
                texts.append((name, getattr(self, name)))
        return texts

    def replace_texts(self, replaced: dict[str, str]) -> Record:
        """A copy with some texts (keyed by canonical field) replaced; used for redaction."""
        messages = []
        for i, message in enumerate(self.messages):
            message = dict(message, content=replaced.get(f"messages[{i}].content", message["content"]))
            if message.get("tool_calls"):
                message["tool_calls"] = [_replace_arguments(call, replaced.get(f"messages[{i}].tool_calls[{j}].function.arguments"))
                                         for j, call in enumerate(message["tool_calls"])]
            messages.append(message)
        return Record(self.line, self.layout, messages,
                      *(replaced.get(name, getattr(self, name)) for name in ("chosen", "rejected", "completion")),
                      self.label, self.tools)

    def as_row(self) -> dict:
        """TRL's conversational format: messages for SFT, prompt/chosen/rejected, prompt/completion/label."""
        if self.kind == "sft":
            return {"messages": self.messages, **({"tools": self.tools} if self.tools else {})}
        assistant = lambda text: [{"role": "assistant", "content": text}]  # noqa: E731
        if self.kind == "preference":
            return {"prompt": self.messages, "chosen": assistant(self.chosen), "rejected": assistant(self.rejected)}
        return {"prompt": self.messages, "completion": assistant(self.completion), "label": self.label}

    def content_key(self) -> str:
        return json.dumps(self.as_row(), ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def detect_layout(raw: dict) -> str | None:
    if "chosen" in raw or "rejected" in raw:
        if "conversations" in raw:
            return "sharegpt_preference"
        return "chat_preference" if "messages" in raw else "preference"
    if "label" in raw:
        if "completion" not in raw and "prompt" not in raw:
            return "sharegpt_kto" if "conversations" in raw else "chat_kto" if "messages" in raw else "kto"
        return "kto"
    for key, layout in (("messages", "chat"), ("conversations", "sharegpt"), ("instruction", "alpaca"),
                        ("prompt", "prompt_completion")):
        if key in raw:
            return layout
    return None


def normalize(raw: Any, line: int, layout: str) -> Record:
    """The canonical record of `raw` read as `layout`; raises LayoutProblem naming the field."""
    if not isinstance(raw, dict):
        raise LayoutProblem("(record)", f"expected a JSON object, got {type(raw).__name__}")
    if layout in ("chat", "sharegpt"):
        try:
            tools = tools_definitions(raw.get("tools"))
            messages = (_turns(raw, "messages", "role", "content", {**{r: r for r in ROLES}, **TOOL_ROLES},
                               "system, user, assistant, tool", tool_calls="tool_calls") if layout == "chat" else
                        _turns(raw, "conversations", "from", "value", {**SHAREGPT_ROLES, **SHAREGPT_TOOL_ROLES},
                               "human, gpt, system, function_call, observation", tool_calls="function_call"))
        except ToolStructureProblem as problem:
            raise LayoutProblem(problem.field, problem.message) from None
        return Record(line, layout, messages, tools=tools)
    if layout == "alpaca":
        instruction = _text(raw, "instruction")
        extra = _text(raw, "input", optional=True)
        system = _text(raw, "system", optional=True)
        messages = [{"role": "system", "content": system}] if system else []
        messages += [{"role": "user", "content": f"{instruction}\n\n{extra}" if extra else instruction},
                     {"role": "assistant", "content": _text(raw, "output")}]
        return Record(line, layout, messages)
    if layout == "prompt_completion":
        return Record(line, layout, _prompt(raw, "prompt") + [{"role": "assistant", "content": _answer(raw, "completion")}])
    if layout in ("preference", "chat_preference", "sharegpt_preference"):
        key = {"preference": "prompt", "chat_preference": "messages", "sharegpt_preference": "conversations"}[layout]
        return Record(line, layout, _prompt(raw, key), chosen=_answer(raw, "chosen"), rejected=_answer(raw, "rejected"))
    if layout == "kto":
        key = next((k for k in ("prompt", "messages", "conversations") if k in raw), "prompt")
        label = raw.get("label")
        if not isinstance(label, bool):
            raise LayoutProblem("label", f"expected true or false, got {json.dumps(label)}")
        return Record(line, layout, _prompt(raw, key), completion=_answer(raw, "completion"), label=label)
    if layout in ("chat_kto", "sharegpt_kto"):
        key, role_key = ("messages", "role") if layout == "chat_kto" else ("conversations", "from")
        turns = _chat_messages(raw, key) if layout == "chat_kto" else _sharegpt_messages(raw, key)
        if len(turns) < 2 or turns[-1]["role"] != "assistant":
            raise LayoutProblem(f"{key}[-1].{role_key}", "the last turn must be the assistant's completion "
                                "(what the label judges), after at least one prompt turn")
        label = raw.get("label")
        if not isinstance(label, bool):
            raise LayoutProblem("label", f"expected true or false, got {json.dumps(label)}")
        return Record(line, layout, turns[:-1], completion=turns[-1]["content"], label=label)
    raise ValueError(f"unknown layout {layout!r}")


def source_field(layout: str, field: str) -> str:
    """A canonical field name as the input layout spells it (for messages about content checks)."""
    if layout in ("chat_kto", "sharegpt_kto") and field == "completion":
        field = "messages[-1].content"
    if layout.startswith("sharegpt"):
        field = re.sub(r"\.tool_calls\[\d+\]\.function\.\w+$", ".value", field)   # the function_call turn's value
        return field.replace("messages", "conversations").replace(".role", ".from").replace(".content", ".value")
    if layout in ("preference", "kto"):
        return field.replace("messages", "prompt")
    if layout == "alpaca":
        return {"messages[-1].role": "output", "messages": "instruction/output"}.get(field, "instruction/input/output")
    if layout == "prompt_completion":
        return {"messages[-1].role": "completion", "messages": "prompt/completion"}.get(field, "prompt/completion")
    return field


def _text(raw: dict, key: str, optional: bool = False) -> str:
    value = raw.get(key)
    if value is None and optional:
        return ""
    if not isinstance(value, str):
        expected = "a string" if not optional else "a string or absent"
        got = "missing" if key not in raw else type(value).__name__
        raise LayoutProblem(key, f"expected {expected}, got {got}")
    return value


def _chat_messages(raw: dict, key: str) -> list[dict]:
    return _turns(raw, key, "role", "content", {role: role for role in ROLES}, ", ".join(ROLES))


def _sharegpt_messages(raw: dict, key: str) -> list[dict]:
    return _turns(raw, key, "from", "value", SHAREGPT_ROLES, "human, gpt, system")


def _turns(raw: dict, key: str, role_key: str, text_key: str, roles: dict[str, str], expected: str,
           tool_calls: str | None = None) -> list[dict]:
    """A list of turns under `key`, each {role_key: one of roles, text_key: a string}, as chat messages.
    With `tool_calls` ("tool_calls" for OpenAI chat, "function_call" for ShareGPT) turns may call tools
    and carry their results."""
    turns = raw.get(key)
    if not isinstance(turns, list) or not turns:
        raise LayoutProblem(key, f"expected a non-empty list of {{{role_key}, {text_key}}} objects")
    messages = []
    for index, turn in enumerate(turns):
        where = f"{key}[{index}]"
        if not isinstance(turn, dict):
            raise LayoutProblem(where, f"expected an object with {role_key} and {text_key}, got {type(turn).__name__}")
        if turn.get(role_key) not in roles:
            raise LayoutProblem(f"{where}.{role_key}", f"expected one of {expected}, got {turn.get(role_key)!r}")
        if tool_calls == "tool_calls" and turn.get("tool_calls") is not None and turn[role_key] == "assistant":
            content = turn.get(text_key)
            messages.append({"role": "assistant", "content": "" if content in (None, "") else _content(content, f"{where}.{text_key}"),
                             "tool_calls": openai_tool_calls(turn["tool_calls"], f"{where}.tool_calls")})
        elif tool_calls == "function_call" and turn[role_key] == "function_call":
            messages.append({"role": "assistant", "content": "", "tool_calls": sharegpt_tool_calls(turn.get(text_key))})
        elif roles[turn[role_key]] == "tool":
            value = turn.get(text_key)
            content = json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else _content(value, f"{where}.{text_key}")
            messages.append({"role": "tool", "content": content,
                             **{k: turn[k] for k in ("tool_call_id", "name") if isinstance(turn.get(k), str)}})
        else:
            messages.append({"role": roles[turn[role_key]], "content": _content(turn.get(text_key), f"{where}.{text_key}")})
    return messages


def _content(value: Any, where: str) -> str:
    """A turn's text: a string, or the text parts of a list of typed parts joined as chat templates do."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list) or not value:
        got = "an empty list" if value == [] else type(value).__name__
        raise LayoutProblem(where, f"expected a string or a list of text parts, got {got}")
    texts = []
    for index, part in enumerate(value):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in TEXT_PART_TYPES and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(kind, str) and kind not in TEXT_PART_TYPES:
            raise LayoutProblem(f"{where}[{index}].type", f"a {kind!r} part: only text parts can be trained on (the "
                                "adapters are text-only); remove the part or describe it in text")
        else:
            raise LayoutProblem(f"{where}[{index}]", 'expected a part {"type": "text", "text": "..."}')
    return "".join(texts)


def _replace_arguments(call: dict, text: str | None) -> dict:
    """A call with its arguments taken from (redacted) text; still an object if the text parses."""
    if text is None:
        return call
    try:
        arguments = json.loads(text) if isinstance(call["function"]["arguments"], dict) else text
    except json.JSONDecodeError:
        arguments = text
    return {**call, "function": {**call["function"], "arguments": arguments}}


def _prompt(raw: dict, key: str) -> list[dict]:
    """A prompt: a string (one user turn) or a conversation in chat or ShareGPT form."""
    value = raw.get(key)
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if isinstance(value, list) and value and isinstance(value[0], dict) and "from" in value[0]:
        return _sharegpt_messages(raw, key)
    if isinstance(value, list):
        return _chat_messages(raw, key)
    got = "missing" if key not in raw else type(value).__name__
    raise LayoutProblem(key, f"expected a string or a list of turns, got {got}")


def _answer(raw: dict, key: str) -> str:
    """An answer: a string, one assistant message, or a one-element list holding it."""
    value = raw.get(key)
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, dict):
        role = value.get("role", value.get("from"))
        content = value.get("content", value.get("value"))
        if SHAREGPT_ROLES.get(role) != "assistant" or content is None:
            raise LayoutProblem(key, "expected an assistant message {role: assistant, content: ...}")
        return _content(content, f"{key}.content")
    if isinstance(value, str):
        return value
    got = "missing" if key not in raw else type(value).__name__
    raise LayoutProblem(key, f"expected a string or one assistant message, got {got}")
