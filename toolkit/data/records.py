"""Reading fine-tuning data files into canonical records, naming file, line and field on error.

Files are JSON Lines or a JSON array, UTF-8; each record's layout is detected (toolkit.data.formats).
RecordReader streams a file in chunks; load_records reads it whole.
Problems are collected, not raised, so the caller decides between stopping (the default) and
quarantining.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
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
    records: list[Record] = field(default_factory=list)   # filled by load_records; a RecordReader streams them
    problems: list[Problem] = field(default_factory=list)
    records_read: int = 0

    @property
    def lines_read(self) -> int:
        return self.records_read + len(self.problems)

    @property
    def kind(self) -> str | None:
        return KIND_OF_LAYOUT[self.layout] if self.layout else None


def load_records(path: str | Path, data_format: str = "auto") -> ParsedFile:
    """Every record of a JSONL or JSON-array file, in one layout: `data_format`, or with "auto" the
    layout of the first recognisable record. A record in another layout is a problem, not a guess."""
    reader = RecordReader(path, data_format)
    reader.parsed.records = [record for chunk in reader.chunks(1 << 62) for record in chunk]
    return reader.parsed


class RecordReader:
    """A file's records in chunks, in file order, with its problems collected in `parsed` as it goes.
    JSON Lines are read line by line, so memory holds one chunk; a JSON array is parsed whole (it
    cannot be parsed in parts: use JSON Lines for files that do not fit in memory). `lines` reads
    only those lines, for a later pass that knows which records it needs (the file's layout is then
    given, not detected)."""

    def __init__(self, path: str | Path, data_format: str = "auto", lines: set[int] | None = None,
                 layout: str | None = None):
        self.path, self.data_format, self.lines = Path(path), data_format, lines
        self.parsed = ParsedFile(str(path), layout)
        self._first_line: int | None = None

    def chunks(self, size: int) -> Iterator[list[Record]]:
        chunk: list[Record] = []
        items = _array_items if _is_json_array(self.path) else _jsonl_items
        for line_no, raw in items(self.path, self.parsed.problems, self.lines):
            record = self._record(line_no, raw)
            if record is None:
                continue
            self.parsed.records_read += 1
            chunk.append(record)
            if len(chunk) >= size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def _record(self, line_no: int, raw) -> Record | None:
        parsed, name = self.parsed, str(self.path)
        accepted = FORMATS.get(self.data_format)
        layout = detect_layout(raw) if isinstance(raw, dict) else None
        if isinstance(raw, dict) and layout is None:
            keys = ", ".join(sorted(raw)) or "none"
            parsed.problems.append(Problem(name, line_no, "(record)", f"unrecognised layout (keys found: {keys}); "
                                           f"expected {_expected(accepted, parsed.layout)}", _excerpt(raw)))
            return None
        if isinstance(raw, dict):
            wanted = (parsed.layout,) if parsed.layout else accepted
            if wanted and layout not in wanted:
                origin = (f"the {parsed.layout} layout of line {self._first_line}" if self._first_line
                          else f"the {parsed.layout} layout" if parsed.layout else f"data.format: {self.data_format}")
                parsed.problems.append(Problem(name, line_no, "(record)", f"this record is in the {layout} layout, but the "
                                               f"file is in {origin}; expected {_expected(wanted, None)}", _excerpt(raw)))
                return None
        try:
            record = normalize(raw, line_no, layout or (parsed.layout or "chat"))
        except LayoutProblem as problem:
            parsed.problems.append(Problem(name, line_no, problem.field, problem.message, _excerpt(raw)))
            return None
        if parsed.layout is None:
            parsed.layout, self._first_line = record.layout, line_no
        return record


_BOM = b"\xef\xbb\xbf"


def _is_json_array(path: Path) -> bool:
    """Whether the file's first character (after a byte-order mark and white space) is '['."""
    with open(path, "rb") as handle:
        block = handle.read(1 << 16).removeprefix(_BOM)
        while block and not block.lstrip():
            block = handle.read(1 << 16)
    return block.lstrip().startswith(b"[")


def _array_items(path: Path, problems: list[Problem], lines: set[int] | None):
    name, raw_bytes = str(path), path.read_bytes()
    try:
        text = raw_bytes.decode("utf-8-sig")
    except UnicodeDecodeError as exc:   # one JSON array cannot be read around a bad byte: the whole file is refused
        line = raw_bytes[: exc.start].count(b"\n") + 1
        problems.append(Problem(name, line, "(file)", f"not valid UTF-8 (byte {exc.start}); re-save the file as UTF-8"))
        return
    for line_no, raw in _json_items(text, name, problems):
        if lines is None or line_no in lines:
            yield line_no, raw


def _jsonl_items(path: Path, problems: list[Problem], lines: set[int] | None):
    """(line number, decoded value) of each non-blank line, each line decoded on its own so that a bad
    byte or bad JSON is a problem of that line only. Lines end at "\n" alone: str.splitlines() would
    also cut at U+2028, U+2029, U+0085 and others, which are valid inside a JSON string."""
    name, empty = str(path), True
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            if lines is not None and line_no not in lines:
                continue
            raw = raw.removesuffix(b"\n")
            if line_no == 1:
                raw = raw.removeprefix(_BOM)
            try:
                line = raw.decode("utf-8").removesuffix("\r")
            except UnicodeDecodeError as exc:
                empty = False
                problems.append(Problem(name, line_no, "(line)", f"not valid UTF-8 (byte {exc.start} of the line); "
                                        "re-save the file as UTF-8", raw[:200].decode("utf-8", "replace")))
                continue
            if not line.strip():
                continue
            empty = False
            try:
                yield line_no, json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(Problem(name, line_no, "(line)", f"invalid JSON: {exc.msg} (column {exc.colno})", line[:200]))
            except RecursionError:
                problems.append(Problem(name, line_no, "(line)", "JSON nested too deeply to be a training record", line[:200]))
    if empty and lines is None:
        problems.append(Problem(name, 1, "(file)", "the file is empty; expected JSON Lines or a JSON array of records"))


def _expected(layouts: tuple[str, ...] | None, current: str | None) -> str:
    names = (current,) if current else (layouts or tuple(EXAMPLES))
    return " or ".join(f"{n} {EXAMPLES[n]}" for n in names)


def _json_items(text: str, name: str, problems: list[Problem]):
    """(line number, decoded value) for each record of a JSON array text."""
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.append(Problem(name, exc.lineno, "(file)", f"invalid JSON array: {exc.msg}"))
        return
    except RecursionError:
        problems.append(Problem(name, 1, "(file)", "JSON nested too deeply to be a file of training records"))
        return
    yield from zip(_array_item_lines(text, len(items)), items)


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
