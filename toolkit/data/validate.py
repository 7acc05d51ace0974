"""The validate stage: the data gate that runs before any compute is spent.

Reads the chat data, checks every record's structure, runs the Great Expectations suite, checks the
datasheet, and writes deterministic train / validation / held-out splits plus one report. Bad
records stop the stage (exit 2) with file, line and field, or, with data.quarantine, go to a
quarantine file with their reasons while the rest continues. Nothing is dropped silently: the
report counts every record in and out.
"""

from __future__ import annotations

from pathlib import Path

from toolkit.config import Params
from toolkit.data.datasheet import load_datasheet
from toolkit.data.expectations import load_suite, run_suite, suite_path
from toolkit.data.records import Problem, load_chat_file
from toolkit.data.splits import SPLITS, assign_split
from toolkit.errors import DataError
from toolkit.files import atomic_write_jsonl, sha256_file
from toolkit.layout import QUARANTINE_FILE, SPLIT_FILES
from toolkit.reports import ExpectationResult, ValidateReport, digests, write_report

SUITE_NAME = "chat_sft"


def run_validate(params: Params) -> ValidateReport:
    data = params.data
    data_path = Path(data.path)
    if not data_path.is_file():
        raise DataError("training data file not found (params.yaml data.path)", file=data.path)

    datasheet, datasheet_missing = (None, [])
    if data.datasheet:
        datasheet, datasheet_missing = load_datasheet(data.datasheet)
        if datasheet_missing:
            raise DataError(f"missing required datasheet field(s): {', '.join(datasheet_missing)}", file=data.datasheet)

    parsed = load_chat_file(data_path)
    suite_file = suite_path(SUITE_NAME)
    specs = load_suite(suite_file, params)
    outcomes = run_suite(parsed.records, specs, SUITE_NAME)

    problems = list(parsed.problems)
    by_line = {record.line: record for record in parsed.records}
    for outcome in outcomes:
        for line in outcome.failing_lines:
            problems.append(Problem(data.path, line, outcome.field, f"{outcome.description} [{outcome.id}]"))
    problems.sort(key=lambda p: p.line)
    bad_lines = {p.line for p in problems}
    good = [r for r in parsed.records if r.line not in bad_lines]

    if problems and not data.quarantine:
        more = f" ({len(problems) - 1} more problem(s); set data.quarantine: true to set bad records aside)" \
            if len(problems) > 1 else " (set data.quarantine: true to set bad records aside)"
        first = problems[0]
        raise DataError(first.message + more, file=first.file, line=first.line, field=first.field)
    if not good:
        raise DataError("no valid records left to train on", file=data.path)

    quarantined = []
    for problem in problems:
        record = by_line.get(problem.line)
        quarantined.append({**problem.as_dict(), "record": record.as_dict() if record else None})
    outputs = []
    if data.quarantine:
        atomic_write_jsonl(QUARANTINE_FILE, quarantined)
        outputs.append(QUARANTINE_FILE)

    splits: dict[str, list[dict]] = {name: [] for name in SPLITS}
    for record in good:
        split = assign_split(record.messages, data.validation_fraction, data.heldout_fraction, params.seed)
        splits[split].append(record.as_dict())
    for name, rows in splits.items():
        atomic_write_jsonl(SPLIT_FILES[name], rows)
        outputs.append(SPLIT_FILES[name])

    inputs = [data_path, suite_file] + ([Path(data.datasheet)] if data.datasheet else [])
    report = ValidateReport(
        params={"data": params.section("data"), "seed": params.seed},
        inputs=digests(inputs),
        outputs=digests(outputs),
        passed=not problems or data.quarantine,
        data_file=data.path,
        data_sha256=sha256_file(data_path),
        records_in=parsed.lines_read,
        records_valid=len(good),
        records_quarantined=len({p.line for p in problems}),
        problems=[p.as_dict() for p in problems[:50]],
        expectation_suite=suite_file.as_posix(),
        expectations=[ExpectationResult(**o.as_dict()) for o in outcomes],
        splits={name: len(rows) for name, rows in splits.items()},
        datasheet=datasheet,
        datasheet_missing_fields=datasheet_missing,
    )
    write_report(report)
    return report
