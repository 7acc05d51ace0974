"""The hardening table of issue #21: each case the issue found weak or bad, the tests that keep it
fixed and whether they pass now; and how many good records a file full of hostile lines loses.

    .venv/bin/python benchmarks/hardening_table.py [--junit JUNIT.xml] [--out benchmarks/results/hardening.json]

Part 1 runs the tests (the e2e ones build a pipeline first, about 8 minutes), or reads the outcomes
of a whole-suite run made with `--junitxml` (`--junit`). A case is "good" when
every test for it passes: the input is refused or set aside with exit 2 (or 4 for an operating-system
error), a message naming file and line, no traceback, nothing lost. Part 2 needs `artifacts/base`
(run `dvc repro` first): it hides one line of each hostile kind among good records and validates the
file with `data.quarantine: true`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ADV = "tests/test_adversarial.py"
SIGNED = "tests/governance/test_signed_release.py"

# (area, case as the issue words it, what it was, the tests that keep it fixed: file::name prefix)
CASES = [
    ("data", "one non-UTF-8 line makes quarantine refuse the whole file", "bad",
     [f"{ADV}::test_quarantine_keeps_every_good_line_around_one_that_is_not_utf8"]),
    ("data", "U+2028 / U+2029 / U+0085 inside a JSON string split a record", "bad",
     [f"{ADV}::test_json_lines_are_split_on_newlines_only",
      f"{ADV}::test_a_ledger_entry_holding_a_line_separator_keeps_the_chain"]),
    ("data", "turns shorter than the n-gram, NaN and escaped nulls crash decontamination", "bad",
     [f"{ADV}::test_turns_shorter_than_the_ngram_do_not_crash_decontamination"]),
    ("data", "a 100k-deep nested record crashes the run with quarantine on", "bad",
     [f"{ADV}::test_a_record_nested_100k_deep_is_set_aside"]),
    ("data", "datasheet of wrong types accepted", "bad",
     [f"{ADV}::test_a_datasheet_of_wrong_types_lists_every_problem_with_its_key_and_line"]),
    ("data", "`data.datasheet: null` passes validate, card check and gate", "bad",
     [f"{ADV}::test_a_missing_datasheet_is_the_policys_decision"]),
    ("config", "repeated key or section in params.yaml silently wins", "bad",
     [f"{ADV}::test_a_repeated_params_key_or_section_is_refused_with_its_line"]),
    ("config", "repeated `severity:` or rule id in a policy turns block into warn", "bad",
     [f"{ADV}::test_a_repeated_severity_or_rule_id_in_a_policy_is_refused"]),
    ("config", "repeated key in a suite, datasheet (and rubric, catalog)", "bad",
     [f"{ADV}::test_a_repeated_key_in_a_suite_is_refused",
      f"{ADV}::test_a_datasheet_with_bytes_that_are_not_utf8_or_repeated_keys"]),
    ("config", "non-UTF-8 bytes in params, a policy, a suite or a datasheet: traceback, exit 1", "weak",
     [f"{ADV}::test_bytes_that_are_not_utf8_are_a_clear_error_with_the_line",
      f"{ADV}::test_a_datasheet_with_bytes_that_are_not_utf8_or_repeated_keys"]),
    ("models", "pickled adapter loaded through train.init_adapter / canary.previous_adapter", "bad",
     [f"{ADV}::test_a_pickled_adapter_is_refused_wherever_an_adapter_is_named",
      f"{ADV}::test_a_pickled_adapter_is_never_loaded_for_evaluation_release_or_export"]),
    ("release", "orphaned bundle blocks every later release; staging folders left", "bad",
     [f"{ADV}::test_an_orphaned_bundle_and_a_killed_staging_folder_never_block_or_reuse_a_version"]),
    ("release", "SIGKILL during release (5 points): registry usable, versions never reused", "bad",
     [f"{ADV}::test_a_release_killed_at_any_point_leaves_a_registry_the_next_release_and_verify_handle",
      f"{ADV}::test_a_torn_ledger_line_is_refused_then_set_aside_by_repair"]),
    ("release", "v1 and v2 bundles swapped pass verify", "bad",
     [f"{SIGNED}::test_tampering_is_caught_with_the_trusted_key[bundles v1 and v2 swapped]"]),
    ("release", "card bounds or gate.json edited, manifest and chain regenerated", "bad",
     [f"{SIGNED}::test_tampering_is_caught_with_the_trusted_key[card confidence bounds",
      f"{SIGNED}::test_tampering_is_caught_with_the_trusted_key[gate.json edited"]),
    ("judge", "dead endpoint: 170 s of retries before giving up", "bad",
     [f"{ADV}::test_a_dead_judge_endpoint_trips_the_circuit_breaker"]),
    ("faults", "disk full / read-only reports or registry: traceback, exit 1", "weak",
     [f"{ADV}::test_an_operating_system_error_exits_4_with_one_line_and_no_half_written_report",
      f"{ADV}::test_a_read_only_registry_or_reports_folder_exits_4_and_changes_nothing"]),
    ("messages", "exit-2 messages name only the first bad line", "weak",
     [f"{ADV}::test_every_bad_line_is_named_up_to_the_limit_with_a_count_of_the_rest",
      f"{ADV}::test_every_bad_params_key_is_named_with_its_line"]),
    ("injection", "raw <script> from governance fields in the Markdown card", "weak",
     [f"{ADV}::test_markdown_outputs_escape_html_and_keep_json_metadata"]),
    ("stale outputs", "a failed stage leaves the previous run's report (validate, gate)", "weak",
     [f"{ADV}::test_a_failed_validate_leaves_no_report_or_split_of_an_earlier_run",
      f"{ADV}::test_a_gate_that_cannot_run_leaves_no_earlier_verdict"]),
]


def run_tests(workdir: Path) -> Path:
    """Runs the test files of the cases; the JUnit XML of the run."""
    files = sorted({test.split("::")[0] for *_, tests in CASES for test in tests})
    junit = workdir / "junit.xml"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}", *files],
                   cwd=REPO, env=env)
    return junit


def read_outcomes(junit: Path) -> dict[str, str]:
    """Outcome (passed / failed / skipped) of every test node of a JUnit XML, by node id."""
    outcomes = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        path = case.get("classname").replace(".", "/") + ".py"
        status = "failed" if case.find("failure") is not None or case.find("error") is not None else \
            "skipped" if case.find("skipped") is not None else "passed"
        outcomes[f"{path}::{case.get('name')}"] = status
    return outcomes


def case_rows(outcomes: dict[str, str]) -> list[dict]:
    rows = []
    for area, case, was, tests in CASES:
        runs = {node: status for node, status in outcomes.items() if any(node.startswith(t) for t in tests)}
        missing = [t for t in tests if not any(node.startswith(t) for node in runs)]
        now = "good" if runs and not missing and all(s == "passed" for s in runs.values()) else \
            "not run" if not runs or all(s == "skipped" for s in runs.values()) else "bad"
        rows.append({"area": area, "case": case, "was": was, "now": now, "tests": len(runs),
                     "passed": sum(s == "passed" for s in runs.values()), "missing": missing})
    return rows


def hostile_lines() -> dict[str, bytes]:
    """One line of each hostile kind; each must be set aside, none may take a good record with it."""
    good = {"messages": [{"role": "user", "content": "Where is my parcel?"}, {"role": "assistant", "content": "Soon."}]}
    return {
        "not UTF-8": b'{"messages": [{"role": "user", "content": "caf\xe9"}]}',
        "invalid JSON": b'{"messages": [',
        "nested 100k deep": b"[" * 100_000 + b"]" * 100_000,
        "NaN content": b'{"messages": [{"role": "user", "content": NaN}, {"role": "assistant", "content": "x"}]}',
        "null content": b'{"messages": [{"role": "user", "content": null}, {"role": "assistant", "content": "x"}]}',
        "unknown layout": b'{"question": "a", "answer": "b"}',
        "other layout": json.dumps({"instruction": "a", "output": "b"}).encode(),
        "image part": json.dumps({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {
            "url": "x"}}]}, {"role": "assistant", "content": "y"}]}).encode(),
        "ends with user": json.dumps({"messages": good["messages"][:1]}).encode(),
        "empty turn": json.dumps({"messages": [good["messages"][0], {"role": "assistant", "content": " "}]}).encode(),
        "not an object": b'["a", "b"]',
    }


def records_lost(workdir: Path) -> dict:
    """Good records (own demo tickets, some holding U+2028/U+2029/U+0085) with a hostile line after
    every 25th; validated with quarantine on. Lost = good records neither kept nor accounted for."""
    import yaml

    tickets = (REPO / "data/support_tickets.jsonl").read_bytes().split(b"\n")[:400]
    good = []
    for index, line in enumerate(t for t in tickets if t.strip()):
        record = json.loads(line)
        if index % 10 == 0:   # a separator inside a string is still one record
            record["messages"][-2]["content"] += ["\u2028", "\u2029", "\u0085"][index % 3] + "thanks"
        good.append(json.dumps(record, ensure_ascii=False).encode())
    hostile = list(hostile_lines().items())
    lines, kinds = [], []
    for index, line in enumerate(good):
        lines.append(line)
        if index % 25 == 24 and hostile:
            kind, bad = hostile.pop(0)
            lines.append(bad)
            kinds.append(kind)
    project = workdir / "project"
    (project / "data").mkdir(parents=True)
    (project / "data/d.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    for rel in ("policies", "eval_suites", "data/support_tickets.datasheet.yaml"):
        source = REPO / rel
        subprocess.run(["cp", "-r", str(source), str(project / rel)], check=True)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"].update(path="data/d.jsonl", quarantine=True, tokenizer=str(REPO / "artifacts/base"))
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    started = time.perf_counter()
    result = subprocess.run([str(REPO / ".venv/bin/toolkit"), "validate"], cwd=project, capture_output=True, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    wall = time.perf_counter() - started
    report = json.loads((project / "reports/validate.json").read_text())
    quarantined = [json.loads(line) for line in (project / "artifacts/data/quarantine.jsonl").read_text().splitlines()]
    dropped = sum(report["dropped"].values())
    hostile_numbers = _hostile_line_numbers(lines)
    good_quarantined = len({q["line"] for q in quarantined} - hostile_numbers)
    return {"exit_code": result.returncode, "traceback": "Traceback" in result.stderr, "good_records": len(good),
            "hostile_lines": len(kinds), "hostile_kinds": kinds, "records_in": report["records_in"],
            "quarantined": report["records_quarantined"],
            "hostile_lines_set_aside": len({q["line"] for q in quarantined} & hostile_numbers),
            "dropped_with_reason": dropped,
            "records_out": report["records_out"], "good_records_quarantined": good_quarantined,
            "good_records_lost": len(good) - report["records_out"] - dropped - good_quarantined,
            "wall_s": round(wall, 2)}


def _hostile_line_numbers(lines: list[bytes]) -> set[int]:
    kinds = set(hostile_lines().values())
    return {number for number, line in enumerate(lines, start=1) if line in kinds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results/hardening.json")
    parser.add_argument("--junit", type=Path, help="outcomes of a finished run (pytest --junitxml) instead of a new one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        rows = case_rows(read_outcomes(args.junit or run_tests(Path(folder))))
        data = records_lost(Path(folder))
    summary = {"cases": len(rows), "were_bad": sum(r["was"] == "bad" for r in rows),
               "were_weak": sum(r["was"] == "weak" for r in rows),
               **{f"now_{state}": sum(r["now"] == state for r in rows) for state in ("good", "bad", "not run")}}
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
              "summary": summary, "cases": rows, "records": data}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print("| Area | Case (issue #21) | Was | Now | Tests passed |\n|---|---|---|---|---:|")
    for r in rows:
        print(f"| {r['area']} | {r['case']} | {r['was']} | {r['now']} | {r['passed']} / {r['tests']} |")
    print(json.dumps(summary), json.dumps(data), sep="\n")


if __name__ == "__main__":
    main()
