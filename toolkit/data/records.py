"""Reading fine-tuning data files into canonical records, naming file, line and field on error.

Files are JSON Lines or a JSON array, UTF-8; each record's layout is detected (toolkit.data.formats).
Problems are collected, not raised, so the caller decides between stopping (the default) and
quarantining.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.data.formats import EXAMPLES, FORMATS, KIND_OF_LAYOUT, LayoutProblem, Record, detect_layout, normalize


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
class ParsedFile:
    path: str
    layout: str | None = None
    records: list[Record] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def lines_read(self) -> int:
        return len(self.records) + len(self.problems)

    @property
    def kind(self) -> str | None:
        return KIND_OF_LAYOUT[self.layout] if self.layout else None


def load_records(path: str | Path, data_format: str = "auto") -> ParsedFile:
    """Every record of a JSONL or JSON-array file, in one layout: `data_format`, or with "auto" the
    layout of the first recognisable record. A record in another layout is a problem, not a guess."""
    path = Path(path)
    name = str(path)
    parsed = ParsedFile(name)
    raw_bytes = path.read_bytes()
    try:
        text = raw_bytes.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if raw_bytes.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"["):
            # One JSON array cannot be read around a bad byte: the whole file is refused.
            line = raw_bytes[: exc.start].count(b"\n") + 1
            parsed.problems.append(Problem(name, line, "(file)", f"not valid UTF-8 (byte {exc.start}); "
                                           "re-save the file as UTF-8"))
            return parsed
        # JSON Lines: decode line by line, so one bad line is a problem of that line only.
        text = "\n".join(_decode_lines(raw_bytes, name, parsed.problems))
    if not text.strip():
        parsed.problems.append(Problem(name, 1, "(file)", "the file is empty; expected JSON Lines or a JSON array of records"))
        return parsed
    accepted = FORMATS.get(data_format)
    first_line = None
    for line_no, raw in _json_items(text, name, parsed.problems):
        layout = detect_layout(raw) if isinstance(raw, dict) else None
        if isinstance(raw, dict) and layout is None:
            keys = ", ".join(sorted(raw)) or "none"
            parsed.problems.append(Problem(name, line_no, "(record)", f"unrecognised layout (keys found: {keys}); "
                                           f"expected {_expected(accepted, parsed.layout)}", _excerpt(raw)))
            continue
        if isinstance(raw, dict):
            wanted = (parsed.layout,) if parsed.layout else accepted
            if wanted and layout not in wanted:
                origin = f"the {parsed.layout} layout of line {first_line}" if parsed.layout else f"data.format: {data_format}"
                parsed.problems.append(Problem(name, line_no, "(record)", f"this record is in the {layout} layout, but the "
                                               f"file is in {origin}; expected {_expected(wanted, None)}", _excerpt(raw)))
                continue
        try:
            record = normalize(raw, line_no, layout or (parsed.layout or "chat"))
        except LayoutProblem as problem:
            parsed.problems.append(Problem(name, line_no, problem.field, problem.message, _excerpt(raw)))
            continue
        if parsed.layout is None:
            parsed.layout, first_line = record.layout, line_no
        parsed.records.append(record)
    return parsed


def _expected(layouts: tuple[str, ...] | None, current: str | None) -> str:
    names = (current,) if current else (layouts or tuple(EXAMPLES))
    return " or ".join(f"{n} {EXAMPLES[n]}" for n in names)


def _json_items(text: str, name: str, problems: list[Problem]):
    """(line number, decoded value) for each record of a JSON Lines or JSON array text."""
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            problems.append(Problem(name, exc.lineno, "(file)", f"invalid JSON array: {exc.msg}"))
            return
        except RecursionError:
            problems.append(Problem(name, 1, "(file)", "JSON nested too deeply to be a file of training records"))
            return
        decoder_lines = _array_item_lines(text, len(items))
        yield from zip(decoder_lines, items)
        return
    # "\n" only: str.splitlines() would also cut at U+2028, U+2029, U+0085 and others, which are valid
    # inside a JSON string, and every later line number would be wrong.
    for line_no, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            yield line_no, json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(name, line_no, "(line)", f"invalid JSON: {exc.msg} (column {exc.colno})", line[:200]))
        except RecursionError:
            problems.append(Problem(name, line_no, "(line)", "JSON nested too deeply to be a training record", line[:200]))


def _decode_lines(raw: bytes, name: str, problems: list[Problem]) -> list[str]:
    """Each line decoded on its own; an undecodable one becomes a problem (and an empty line)."""
    lines = []
    for line_no, line in enumerate(raw.removeprefix(b"\xef\xbb\xbf").split(b"\n"), start=1):
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            problems.append(Problem(name, line_no, "(line)", f"not valid UTF-8 (byte {exc.start} of the line); "
                                    "re-save the file as UTF-8", line[:200].decode("utf-8", "replace")))
            lines.append("")
    return lines


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


def _excerpt(raw: object) -> str:
    return json.dumps(raw, ensure_ascii=False)[:200]
