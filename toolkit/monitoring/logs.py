"""Production log records: the documented JSON Lines schema (docs/monitoring.md) and the
OpenAI-compatible chat-completion request/response logs that vLLM and most gateways write.

Files may be gzip-compressed; a folder means every *.jsonl / *.jsonl.gz in it. A record that cannot
be read raises `BadField` naming the field; the reader (toolkit.monitoring.observe) counts it with its
file and line and decides what share of bad records stops the run.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from toolkit.errors import DataError

LOG_SUFFIXES = (".jsonl", ".jsonl.gz", ".json.gz")


@dataclass
class LogRecord:
    file: str
    line: int
    time: dt.datetime
    release: str | None
    messages: list[dict]                    # the request's conversation (what the user sent)
    response: str
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    feedback: dict[str, Any] = field(default_factory=dict)
    reference: str | None = None
    request_id: str | None = None           # pairs the answers of two releases to one request (shadow)

    @property
    def user_text(self) -> str:
        return user_text(self.messages)


def user_text(messages: list[dict] | str) -> str:
    """What the user wrote: their turns' text, or a plain-text prompt as it is."""
    if isinstance(messages, str):
        return messages
    return "\n".join(m["content"] for m in messages if isinstance(m, dict) and m.get("role") == "user"
                     and isinstance(m.get("content"), str))


@dataclass(frozen=True)
class BadRecord:
    file: str
    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: field '{self.field}': {self.reason}"


def log_files(paths: list[str | Path]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(LOG_SUFFIXES))
            if not found:
                raise DataError(f"no log files ({', '.join('*' + s for s in LOG_SUFFIXES)}) in this folder", file=str(path))
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise DataError("log file not found", file=str(path))
    return files


def log_lines(path: Path, digest) -> Iterator[tuple[int, str]]:
    """Lines split on \\n only (a JSON string may hold U+2028); an undecodable line is a bad record."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                digest.update(raw)
                try:
                    yield number, raw.decode("utf-8").removesuffix("\n").removesuffix("\r")
                except UnicodeDecodeError:
                    yield number, "\x00not utf-8"       # json.loads refuses it: a bad record with its line
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read the log file ({exc})", file=str(path)) from None


class BadField(Exception):
    """A record that cannot be read: the field and why."""

    def __init__(self, field: str, reason: str):
        self.field, self.reason = field, reason


def parse_record(value: Any, file: str, line: int) -> tuple[LogRecord, str]:
    """One record in the toolkit's schema or an OpenAI-compatible request/response pair."""
    if not isinstance(value, dict):
        raise BadField("(record)", "expected a JSON object")
    if isinstance(value.get("request"), dict) or isinstance(value.get("response"), dict):
        return _from_openai(value, file, line), "openai"
    return _from_toolkit(value, file, line), "toolkit"


def _from_toolkit(value: dict, file: str, line: int) -> LogRecord:
    response = value.get("response")
    if not isinstance(response, str):
        raise BadField("response", "expected the response text (a string)")
    return LogRecord(file=file, line=line, time=_time(value.get("time"), "time"),
                     release=_release(value.get("release", value.get("adapter"))),
                     messages=_messages(value.get("messages"), "messages"), response=response,
                     latency_ms=_number(value.get("latency_ms"), "latency_ms"),
                     prompt_tokens=_count(value.get("prompt_tokens"), "prompt_tokens"),
                     completion_tokens=_count(value.get("completion_tokens"), "completion_tokens"),
                     feedback=_feedback(value.get("feedback")), reference=_reference(value.get("reference")),
                     request_id=_request_id(value.get("request_id")))


def _from_openai(value: dict, file: str, line: int) -> LogRecord:
    request, response = value.get("request"), value.get("response")
    if not isinstance(request, dict):
        raise BadField("request", "expected the chat-completion request (an object)")
    if not isinstance(response, dict):
        raise BadField("response", "expected the chat-completion response (an object)")
    choices = response.get("choices")
    if not (isinstance(choices, list) and choices and isinstance(choices[0], dict)):
        raise BadField("response.choices", "expected a non-empty list of choices")
    content = (choices[0].get("message") or {}).get("content")
    if not isinstance(content, str):
        raise BadField("response.choices[0].message.content", "expected the answer text")
    usage = response.get("usage") if isinstance(response.get("usage"), dict) else {}
    when = value.get("time", response.get("created"))
    metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
    return LogRecord(file=file, line=line, time=_time(when, "time" if "time" in value else "response.created"),
                     release=_release(value.get("release", metadata.get("release", request.get("model")))),
                     messages=_messages(request.get("messages"), "request.messages"), response=content,
                     latency_ms=_number(value.get("latency_ms"), "latency_ms"),
                     prompt_tokens=_count(usage.get("prompt_tokens"), "response.usage.prompt_tokens"),
                     completion_tokens=_count(usage.get("completion_tokens"), "response.usage.completion_tokens"),
                     feedback=_feedback(value.get("feedback", metadata.get("feedback"))),
                     reference=_reference(value.get("reference")),
                     request_id=_request_id(value.get("request_id", metadata.get("request_id"))))


def parse_time(text: str) -> dt.datetime:
    """An ISO 8601 time or date; `Z` or an offset, none meaning UTC. ValueError when it is not one."""
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def _time(value: Any, name: str) -> dt.datetime:
    if isinstance(value, bool) or value is None:
        raise BadField(name, "expected an ISO 8601 time or Unix seconds")
    try:
        if isinstance(value, (int, float)):
            return dt.datetime.fromtimestamp(float(value), dt.timezone.utc)
        return parse_time(str(value))
    except (ValueError, OverflowError, OSError):
        raise BadField(name, f"not a time: {str(value)[:40]!r}") from None


def _release(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text.removeprefix("v") if text[:1] == "v" and text[1:2].isdigit() else text


def _messages(value: Any, name: str) -> list[dict]:
    from toolkit.data.formats import LayoutProblem, _content   # the data stage's reading of a turn's text

    if not (isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value)):
        raise BadField(name, "expected a list of messages with a role")
    messages = []
    for index, m in enumerate(value):
        try:   # no content: an assistant turn that only called a tool
            content = "" if m.get("content") is None else _content(m["content"], f"{name}[{index}].content")
        except LayoutProblem as problem:
            raise BadField(problem.field, problem.message) from None
        messages.append({"role": str(m["role"]), "content": content})
    return messages


def _number(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise BadField(name, f"expected a non-negative number, got {value!r}")
    return float(value)


def _count(value: Any, name: str) -> int | None:
    number = _number(value, name)
    if number is not None and number != int(number):
        raise BadField(name, f"expected a whole number, got {value!r}")
    return None if number is None else int(number)


def _feedback(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadField("feedback", "expected an object such as {\"rerouted\": true, \"rating\": 2}")
    for key, item in value.items():
        if not isinstance(item, (bool, int, float, str)) or (isinstance(item, float) and not math.isfinite(item)):
            raise BadField(f"feedback.{key}", "expected true/false, a number or a short text")
    return value


def _reference(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _request_id(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BadField("request_id", f"expected a string or an integer, got {type(value).__name__}")
    return str(value)
