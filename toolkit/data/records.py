"""Reading chat-format training data into canonical records, naming file, line and field on error.

Canonical record: {"messages": [{"role": ..., "content": ...}, ...]}. Files are JSON Lines or a
JSON array, UTF-8. Problems are collected, not raised, so the caller decides between stopping
(the default) and quarantining.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    field: str
    message: str
    raw: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: field '{self.field}': {self.message}"

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "field": self.field, "reason": self.message, "raw": self.raw}


@dataclass
class Record:
    line: int
    messages: list[dict]

    def as_dict(self) -> dict:
        return {"messages": self.messages}


@dataclass
class ParsedFile:
    path: str
    records: list[Record] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def lines_read(self) -> int:
        return len(self.records) + len(self.problems)


def load_chat_file(path: str | Path) -> ParsedFile:
    path = Path(path)
    name = str(path)
    parsed = ParsedFile(name)
    raw_bytes = path.read_bytes()
    try:
        text = raw_bytes.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw_bytes[: exc.start].count(b"\n") + 1
        parsed.problems.append(Problem(name, line, "(file)", f"not valid UTF-8 (byte {exc.start}); re-save the file as UTF-8"))
        return parsed
    if not text.strip():
        parsed.problems.append(Problem(name, 1, "(file)", "the file is empty; expected JSON Lines or a JSON array of records"))
        return parsed
    for line_no, raw in _json_items(text, name, parsed.problems):
        message = _check_chat_record(raw)
        if message:
            parsed.problems.append(Problem(name, line_no, message[0], message[1], _excerpt(raw)))
        else:
            parsed.records.append(Record(line_no, [{"role": m["role"], "content": m["content"]} for m in raw["messages"]]))
    return parsed


def _json_items(text: str, name: str, problems: list[Problem]):
    """(line number, decoded value) for each record of a JSON Lines or JSON array text."""
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            problems.append(Problem(name, exc.lineno, "(file)", f"invalid JSON array: {exc.msg}"))
            return
        decoder_lines = _array_item_lines(text, len(items))
        yield from zip(decoder_lines, items)
        return
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield line_no, json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(name, line_no, "(line)", f"invalid JSON: {exc.msg} at column {exc.colno}", line[:200]))


def _array_item_lines(text: str, count: int) -> list[int]:
    """Line on which each element of a top-level JSON array starts."""
    decoder = json.JSONDecoder()
    lines, index = [], text.index("[") + 1
    for _ in range(count):
        while text[index] in " \t\r\n,":
            index += 1
        lines.append(text.count("\n", 0, index) + 1)
        _, index = decoder.raw_decode(text, index)
    return lines


def _check_chat_record(raw: object) -> tuple[str, str] | None:
    if not isinstance(raw, dict):
        return "(record)", f"expected a JSON object, got {type(raw).__name__}"
    if "messages" not in raw:
        keys = ", ".join(sorted(raw)) or "none"
        return "messages", f"missing; expected a chat record {{\"messages\": [{{\"role\", \"content\"}}, ...]}} (keys found: {keys})"
    messages = raw["messages"]
    if not isinstance(messages, list) or not messages:
        return "messages", "expected a non-empty list of {role, content} objects"
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            return where, f"expected an object with role and content, got {type(message).__name__}"
        if message.get("role") not in ROLES:
            return f"{where}.role", f"expected one of {', '.join(ROLES)}, got {message.get('role')!r}"
        if not isinstance(message.get("content"), str):
            return f"{where}.content", f"expected a string, got {type(message.get('content')).__name__}"
    return None


def _excerpt(raw: object) -> str:
    return json.dumps(raw, ensure_ascii=False)[:200]
