"""Production log lines to observations, in chunks, on every core.

A log of millions of records must not be held in memory: the files are read line by line and cut
into chunks; each chunk is parsed, scored with the release's metrics and scanned with the data
stage's detectors (toolkit.monitoring.reference) and tallied per window in a worker process
(toolkit.monitoring.tally), and comes back as those tallies, which the caller merges. Only what must
be global stays: the tallies, and the shadow requests still waiting for the other release's answer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import multiprocessing
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from toolkit.monitoring.analysis import feedback, window_of
from toolkit.monitoring.language import language_of
from toolkit.monitoring.logs import BadRecord, LogRecord, BadField, log_lines, log_files, parse_record
from toolkit.monitoring.reference import ReleaseReference, answer_label, words
from toolkit.monitoring.tally import Observation, Tallies

CHUNK_LINES = 4000
IN_PROCESS_BELOW = 20_000     # lines: below this, starting worker processes costs more than it saves
KEPT_BAD = 1000               # bad records named in messages and the report; all are counted


@dataclass(frozen=True)
class Scope:
    """What a worker needs: the release and the one it replaces, the time span, the reference."""
    reference: ReleaseReference
    version: str
    previous: str | None
    since: dt.datetime | None
    until: dt.datetime | None
    window: str
    feedback_names: tuple[str, ...]
    export: bool


@dataclass
class ChunkResult:
    tallies: Tallies
    bad: list[BadRecord] = field(default_factory=list)
    bad_count: int = 0
    records: int = 0
    layouts: Counter = field(default_factory=Counter)
    other_releases: Counter = field(default_factory=Counter)
    review: list[dict] = field(default_factory=list)   # records for --export-review


_SCOPE: Scope | None = None    # set in the parent before the workers fork


def observe(paths: list[str | Path], scope: Scope, digests: dict[str, str], workers: int | None = None,
            ) -> Iterator[ChunkResult]:
    """Chunk results in file order; `digests` gets each file's SHA-256 once it has been read through."""
    global _SCOPE
    _SCOPE = scope
    files = log_files(paths)
    total = sum(f.stat().st_size for f in files)
    chunks = read_chunks(files, digests)
    # Unless told, fork only for a large log (gzip hides the line count: ~150 bytes a record is a fair guess).
    if workers is None:
        workers = min(4, os.cpu_count() or 1) if total >= IN_PROCESS_BELOW * 150 else 1
    if workers <= 1:
        yield from map(process, chunks)
        return
    # fork: the workers inherit the scope (metrics, detectors, language model) instead of rebuilding it.
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        yield from pool.imap(process, chunks)


def read_chunks(files: list[Path], digests: dict[str, str]) -> Iterator[tuple[str, list[tuple[int, str]]]]:
    for path in files:
        digest = hashlib.sha256()
        chunk: list[tuple[int, str]] = []
        for number, raw in log_lines(path, digest):
            if raw.strip():
                chunk.append((number, raw))
            if len(chunk) >= CHUNK_LINES:
                yield str(path), chunk
                chunk = []
        if chunk:
            yield str(path), chunk
        digests[str(path)] = digest.hexdigest()


def process(chunk: tuple[str, list[tuple[int, str]]]) -> ChunkResult:
    file, lines = chunk
    scope = _SCOPE
    result = ChunkResult(Tallies(list(scope.reference.metrics), scope.feedback_names))
    for number, raw in lines:
        result.records += 1
        record = _parse(raw, file, number, result)
        if record is None:
            continue
        if record.release != scope.version:
            result.other_releases[record.release or "(none)"] += 1
            if scope.previous is None or record.release != scope.previous:
                continue
        if (scope.since is not None and record.time < scope.since) or (scope.until is not None and record.time >= scope.until):
            continue
        observation = _observe(record, scope)
        result.tallies.add(observation)
        if scope.export and observation.new:
            row = _review_row(record, observation, scope)
            if row is not None:
                result.review.append(row)
    return result


def _parse(raw: str, file: str, number: int, result: ChunkResult) -> LogRecord | None:
    try:
        value = json.loads(raw)
        record, layout = parse_record(value, file, number)
    except json.JSONDecodeError as exc:
        return _bad(result, BadRecord(file, number, "(record)", f"not JSON ({exc.msg})"))
    except RecursionError:
        return _bad(result, BadRecord(file, number, "(record)", "nested too deeply"))
    except BadField as bad:
        return _bad(result, BadRecord(file, number, bad.field, bad.reason))
    result.layouts[layout] += 1
    return record


def _bad(result: ChunkResult, bad: BadRecord) -> None:
    result.bad_count += 1
    if len(result.bad) < KEPT_BAD:
        result.bad.append(bad)
    return None


def _observe(record: LogRecord, scope: Scope) -> Observation:
    ref = scope.reference
    text = record.user_text
    found = [feedback(record.feedback, name) for name in scope.feedback_names]
    tokens = (record.prompt_tokens + record.completion_tokens
              if record.prompt_tokens is not None and record.completion_tokens is not None else None)
    return Observation(
        new=record.release == scope.version, time=record.time, window=window_of(record.time, scope.window),
        request_id=record.request_id,
        scores=tuple(spec.metric(record.response, record.reference, **spec.args) for spec, *_ in ref.metrics.values()),
        feedback=tuple(f[0] if f else None for f in found), words=words(text), pii=bool(ref.scanner.find(text)),
        injection=any(p.search(text) for _, p in ref.patterns), language=language_of(text),
        label=answer_label(record.response, ref.label_field) if ref.label_field else None,
        latency_ms=record.latency_ms, tokens=tokens)


def _review_row(record: LogRecord, observation: Observation, scope: Scope) -> dict | None:
    """A record that failed a metric or got negative feedback, as a chat record the data stage reads (the
    response as the assistant's turn), personal data redacted, with where it came from."""
    from toolkit.data.pii import redact

    reasons = [f"failed {name}" for name, score in zip(scope.reference.metrics, observation.scores) if score < 1.0]
    for name in scope.feedback_names:
        found = feedback(record.feedback, name)
        if found and found[0]:
            reasons.append(found[1])
    if not reasons:
        return None
    scanner = scope.reference.scanner
    turns = record.messages + [{"role": "assistant", "content": record.response}]
    return {
        "messages": [{"role": m["role"], "content": redact(m["content"], list(scanner.find(m["content"])))}
                     for m in turns],
        "provenance": {"source": f"production log, {observation.window}", "file": record.file, "line": record.line,
                       "release": record.release, "time": record.time.isoformat(), "reasons": reasons},
    }
