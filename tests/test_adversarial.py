"""Adversarial and careless inputs (issue #21), each kept as a test: records split at the wrong
characters, YAML with repeated keys or bytes that are not UTF-8, pickled adapters."""

import contextlib
import json
import shutil

import pytest
import yaml

from conftest import REPO, run_in
from toolkit.errors import ConfigError, DataError

SEPARATORS = ["\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\x1c"]


def test_json_lines_are_split_on_newlines_only(tmp_path):
    """A JSON string may hold U+2028, U+2029, U+0085 and other characters str.splitlines() cuts at."""
    from toolkit.data.records import load_records

    rows = [{"messages": [{"role": "user", "content": f"before{sep}after"},
                          {"role": "assistant", "content": "ok"}]} for sep in SEPARATORS]
    lines = [json.dumps(row, ensure_ascii=False) for row in rows] + ["{not json"]
    path = tmp_path / "d.jsonl"
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    parsed = load_records(path)
    assert len(parsed.records) == len(SEPARATORS)
    assert [p.line for p in parsed.problems] == [len(SEPARATORS) + 1]
    assert [r.messages[0]["content"] for r in parsed.records] == [f"before{sep}after" for sep in SEPARATORS]


def test_a_ledger_entry_holding_a_line_separator_keeps_the_chain(tmp_path):
    from toolkit.registry import ledger

    path = tmp_path / "ledger.jsonl"
    ledger.append(path, {"version": "1", "override": {"reason": "hotfix\u2028for INC-42\u0085"}})
    ledger.append(path, {"version": "2"})
    assert ledger.check_chain(path) == []
    assert ledger.read_entries(path)[0]["override"]["reason"] == "hotfix\u2028for INC-42\u0085"


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(REPO / "policies", root / "policies")
    shutil.copytree(REPO / "eval_suites/heldout", root / "eval_suites/heldout")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    return root


def _exit2(result, *needles):
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_a_repeated_params_key_or_section_is_refused_with_its_line(project):
    text = (project / "params.yaml").read_text()
    (project / "params.yaml").write_text(text + "\nseed: 7\n")
    line = len((text + "\nseed: 7\n").splitlines())
    _exit2(run_in(project, "toolkit", "check-params"), f"params.yaml:{line}", "duplicate key 'seed'")
    (project / "params.yaml").write_text(text + "\ngate:\n  policy: production\n")
    _exit2(run_in(project, "toolkit", "check-params"), "duplicate key 'gate'")


def test_a_repeated_severity_or_rule_id_in_a_policy_is_refused(project):
    policy = {"name": "strict", "extends": "default", "rules": [
        {"id": "r1", "report": "train", "field": "optimizer_steps", "op": "min", "threshold": 1,
         "severity": "block", "rationale": "trained"}]}
    text = yaml.safe_dump(policy, sort_keys=False).replace("severity: block", "severity: block\n  severity: warn")
    (project / "policies/strict.yaml").write_text(text)
    _exit2(run_in(project, "toolkit", "gate", "--policy", "strict"), "policies/strict.yaml:", "duplicate key 'severity'")
    policy["rules"].append({**policy["rules"][0], "severity": "warn"})
    (project / "policies/strict.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    _exit2(run_in(project, "toolkit", "gate", "--policy", "strict"), "rule id 'r1' is used twice", "rules[1].id")


def test_a_repeated_key_in_a_suite_is_refused(project):
    suite = project / "eval_suites/heldout/suite.yaml"
    suite.write_text(suite.read_text() + "\ntier: ood\n")
    _exit2(run_in(project, "toolkit", "evaluate", "list"), "eval_suites/heldout/suite.yaml:", "duplicate key 'tier'")


@pytest.mark.parametrize("target", ["params.yaml", "policies/default.yaml", "eval_suites/heldout/suite.yaml"])
def test_bytes_that_are_not_utf8_are_a_clear_error_with_the_line(project, target):
    path = project / target
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2] + b" # caf\xe9"
    path.write_bytes(b"\n".join(lines))
    command = {"params.yaml": ["check-params"], "policies/default.yaml": ["gate"],
               "eval_suites/heldout/suite.yaml": ["evaluate", "list"]}[target]
    _exit2(run_in(project, "toolkit", *command), f"{target}:3", "not valid UTF-8")


def test_a_datasheet_with_bytes_that_are_not_utf8_or_repeated_keys(tmp_path):
    from toolkit.data.datasheet import load_datasheet

    sheet = tmp_path / "d.datasheet.yaml"
    sheet.write_bytes(b"name: tickets\nsource: caf\xe9\n")
    with pytest.raises(DataError, match=r"d.datasheet.yaml:2: not valid UTF-8"):
        load_datasheet(sheet)
    sheet.write_text("name: tickets\nlicense: MIT\nlicense: proprietary\n")
    with pytest.raises(DataError, match=r"d.datasheet.yaml:3: not valid YAML: duplicate key 'license'"):
        load_datasheet(sheet)


@pytest.mark.parametrize("key", ["train.init_adapter", "evaluate.canary.previous_adapter"])
def test_a_pickled_adapter_is_refused_wherever_an_adapter_is_named(tmp_path, key):
    from toolkit.models import adapter_folder

    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
    (folder / "adapter_model.bin").write_bytes(b"\x80\x04pickled")
    with pytest.raises(ConfigError, match=r"only pickled weights \(adapter_model.bin\).*safetensors") as caught:
        adapter_folder(folder, key)
    assert key in str(caught.value)
    bundle = tmp_path / "bundle"                      # a release bundle's adapter/ is checked the same way
    shutil.copytree(folder, bundle / "adapter")
    with pytest.raises(ConfigError, match="only pickled weights"):
        adapter_folder(bundle, key)


def test_a_pickled_adapter_is_never_loaded_for_evaluation_release_or_export(tmp_path):
    from toolkit.models import load_with_adapter

    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
    (tmp_path / "adapter_model.bin").write_bytes(b"\x80\x04pickled")
    with pytest.raises(ConfigError, match="only pickled weights"):
        load_with_adapter(tmp_path / "no-base", tmp_path)


def _tickets(n):
    from sample_records import ticket

    return [json.dumps(ticket(i)) for i in range(n)]


def test_quarantine_keeps_every_good_line_around_one_that_is_not_utf8(data_project):
    from pathlib import Path

    from toolkit.data.validate import run_validate
    from toolkit.files import read_jsonl

    params = data_project(_tickets(20), quarantine=True)
    path = Path("data/d.jsonl")                         # as the fixture wrote it, then one byte spoiled
    raw = path.read_bytes().split(b"\n")
    raw[4] = raw[4].replace(b"Ticket", b"Ticket caf\xe9", 1)
    path.write_bytes(b"\n".join(raw))
    report = run_validate(params, progress=lambda _: None)
    assert report.records_in == 20 and report.records_valid == 19 and report.records_quarantined == 1
    (quarantined,) = list(read_jsonl("artifacts/data/quarantine.jsonl"))
    assert quarantined["line"] == 5 and "not valid UTF-8" in quarantined["reason"]
    # Without quarantine the run stops, naming that line.
    strict = params.model_copy(update={"data": params.data.model_copy(update={"quarantine": False})})
    with pytest.raises(DataError, match=r"data/d.jsonl:5: field '\(line\)': not valid UTF-8"):
        run_validate(strict, progress=lambda _: None)


def test_a_record_nested_100k_deep_is_set_aside(data_project):
    from toolkit.data.validate import run_validate

    deep = "[" * 100_000 + "]" * 100_000
    report = run_validate(data_project(_tickets(20) + [deep], quarantine=True), progress=lambda _: None)
    assert report.records_valid == 20 and report.records_quarantined == 1
    assert "nested too deeply" in json.dumps(report.problems)


def test_turns_shorter_than_the_ngram_do_not_crash_decontamination(data_project):
    from toolkit.data.validate import run_validate

    short = [json.dumps({"messages": [{"role": "user", "content": f"hi {i}"},
                                      {"role": "assistant", "content": f"ok {i}"}]}) for i in range(30)]
    odd = [json.dumps({"messages": [{"role": "user", "content": "\u0000"}, {"role": "assistant", "content": "x"}]})]
    report = run_validate(data_project(short + odd, quarantine=True), progress=lambda _: None)
    assert report.records_in == 31 and report.contamination.ngram == 13
    assert report.records_valid + report.records_quarantined == 31


@pytest.mark.e2e
def test_an_orphaned_bundle_and_a_killed_staging_folder_never_block_or_reuse_a_version(pipeline_copy):
    """A release killed after renaming its bundle but before its ledger entry leaves an orphan; one killed
    while filling leaves .staging-*. The next release reports both, removes the staging folder, skips the
    orphan's number, and --repair moves the orphan aside (kept as evidence)."""
    registry = pipeline_copy / "registry"
    run_in(pipeline_copy, "toolkit", "release", check=True)
    shutil.copytree(registry / "releases/v1", registry / "releases/v2")      # the orphan: no ledger entry
    (registry / "releases/.staging-killed").mkdir()
    (registry / "releases/.staging-killed/half.json").write_text("{")
    result = run_in(pipeline_copy, "toolkit", "release")
    assert result.returncode == 0, result.stderr
    assert "released version 3" in result.stdout and "Traceback" not in result.stderr
    assert "releases/v2 has no ledger entry" in result.stderr and ".staging-killed" in result.stderr
    assert not (registry / "releases/.staging-killed").exists() and (registry / "releases/v2").is_dir()
    assert run_in(pipeline_copy, "toolkit", "verify", "registry/releases/v3").returncode == 0
    assert run_in(pipeline_copy, "toolkit", "verify", "registry/releases/v2").returncode == 1
    _exit2(run_in(pipeline_copy, "toolkit", "release", "--version", "2"), "orphaned bundle")
    repaired = run_in(pipeline_copy, "toolkit", "release", "--repair")
    assert repaired.returncode == 0 and "released version 4" in repaired.stdout
    assert not (registry / "releases/v2").exists() and len(list((registry / "orphaned").glob("v2-*"))) == 1
    entries = [json.loads(line) for line in (registry / "ledger.jsonl").read_text().splitlines()]
    assert [e["version"] for e in entries] == ["1", "3", "4"]


def test_a_dead_judge_endpoint_trips_the_circuit_breaker(judge_project):
    """200 requests against a port nobody listens on: the tier stops after the configured run of
    connection failures instead of sending every request through every retry."""
    import socket

    from sample_records import judge_items as _items
    from toolkit.errors import ServiceError
    from toolkit.evals.judge import run_judge

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    class Dead:
        url = f"http://127.0.0.1:{port}"

    params = judge_project(Dead, _items(100), max_connection_failures=5, concurrency=4)
    with pytest.raises(ServiceError) as error:
        run_judge(params)
    message = str(error.value)
    assert error.value.exit_code == 3 and "0 of 200 verdict(s) done" in message
    failures = int(message.split("stopped after ")[1].split(" ")[0])
    assert 5 <= failures <= 5 + 4, message          # the limit, plus requests already in flight


def test_an_operating_system_error_exits_4_with_one_line_and_no_half_written_report(project):
    """A file where the reports folder belongs: the gate cannot clear or write its report (OSError)."""
    (project / "reports").write_text("not a folder")
    result = run_in(project, "toolkit", "gate")
    assert result.returncode == 4, result.stdout + result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "NotADirectoryError" in line and "reports/gate.json" in line and "Traceback" not in result.stderr
    log = line.split("(traceback: ")[1].rstrip(")")
    assert "Traceback" in (project / log).read_text()
    assert (project / "reports").read_text() == "not a folder"


def test_markdown_outputs_escape_html_and_keep_json_metadata(in_tmp):
    from toolkit.templating import render

    (in_tmp / "templates").mkdir()
    (in_tmp / "templates/probe.md.j2").write_text("{{ text }}\nname: {{ text | tojson }}\n")
    out = render("probe.md.j2", text="<script>alert(1)</script> & co")
    assert out.splitlines()[0] == "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"
    assert "<script>" not in out and out.splitlines()[1].startswith('name: "\\u003cscript')


def test_a_datasheet_of_wrong_types_lists_every_problem_with_its_key_and_line(tmp_path):
    from toolkit.data.datasheet import load_datasheet

    sheet = tmp_path / "d.datasheet.yaml"
    good = yaml.safe_load((REPO / "data/support_tickets.datasheet.yaml").read_text())
    load_datasheet(REPO / "data/support_tickets.datasheet.yaml")          # the demo's passes
    bad = {**good, "license": 42, "languages": "en", "date": "last spring", "source": "  "}
    del bad["legal_basis"]
    sheet.write_text(yaml.safe_dump(bad, sort_keys=False))
    lines = {key: n for n, text in enumerate(sheet.read_text().splitlines(), 1) for key in bad if text.startswith(f"{key}:")}
    with pytest.raises(DataError) as error:
        load_datasheet(sheet)
    message = str(error.value)
    for key in ("license", "languages", "date", "source"):
        assert f"d.datasheet.yaml:{lines[key]}: " in message and f"{key}" in message, message
    assert "legal_basis: required but missing" in message and "(5 problems in all)" in message
    sheet.write_text(yaml.safe_dump({**good, "languages": ["English"]}))
    with pytest.raises(DataError, match=r"field 'languages': not a language code: 'English'"):
        load_datasheet(sheet)
    sheet.write_text(yaml.safe_dump({**good, "date": "2024-01 to 2024-06", "funding": {"grant": 7}}))
    assert load_datasheet(sheet)["funding"] == {"grant": 7}                 # further keys are kept


def test_every_bad_line_is_named_up_to_the_limit_with_a_count_of_the_rest(data_project):
    from toolkit.data.validate import run_validate
    from toolkit.errors import MAX_LISTED

    lines = _tickets(50)
    bad = list(range(1, 50, 2))                                              # 25 bad lines among good ones
    for index in bad:
        lines[index] = "{not json"
    with pytest.raises(DataError) as error:
        run_validate(data_project(lines), progress=lambda _: None)
    message = str(error.value)
    named = [n for n in range(1, 51) if f"data/d.jsonl:{n}: " in message]
    assert named == [i + 1 for i in bad][: MAX_LISTED + 1]                   # the first, then MAX_LISTED more
    assert f"... and {len(bad) - MAX_LISTED - 1} more" in message
    assert f"{len(bad)} problem(s) on {len(bad)} line(s)" in message and "data.quarantine: true" in message


def test_every_bad_params_key_is_named_with_its_line(project):
    text = (project / "params.yaml").read_text()
    params = yaml.safe_load(text)
    params["train"]["learning_rate"] = "fast"
    params["train"]["epochz"] = 3
    params["evaluate"]["confidence"] = "high"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = run_in(project, "toolkit", "check-params")
    _exit2(result, "train.learning_rate", "train.epochz: unknown key", "evaluate.confidence", "(3 problems in all)")
    assert result.stderr.count("params.yaml:") == 3


@pytest.mark.e2e
def test_a_missing_datasheet_is_the_policys_decision(pipeline_copy):
    """`data.datasheet: null` validates; the card says provenance is undocumented; the default policy
    warns and production blocks."""
    params = yaml.safe_load((pipeline_copy / "params.yaml").read_text())
    params["data"]["datasheet"] = None
    (pipeline_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run_in(pipeline_copy, "toolkit", "validate", check=True)
    assert json.loads((pipeline_copy / "reports/validate.json").read_text())["datasheet_present"] is False
    run_in(pipeline_copy, "toolkit", "card", check=True)
    card = (pipeline_copy / "artifacts/model_card/README.md").read_text()
    assert "| Datasheet | None: `data.datasheet` is not set" in card
    outcomes = {}
    for policy in ("default", "production", "high-risk"):
        run_in(pipeline_copy, "toolkit", "gate", "--policy", policy)
        gate = json.loads((pipeline_copy / "reports/gate.json").read_text())
        outcomes[policy] = next((r["status"], r["severity"]) for r in gate["rules"] if r["id"] == "datasheet_present")
        if policy == "default":
            assert gate["passed"], gate
    assert outcomes == {"default": ("warned", "warn"), "production": ("failed", "block"), "high-risk": ("failed", "block")}


# A release run in a child process that SIGKILLs itself at the n-th call of a function: a real kill at
# an exact point, with no hook in the toolkit's code.
KILLER = """
import importlib, os, signal, sys
module, name, nth, when = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
owner = importlib.import_module(module)
*path, attribute = name.split(".")
for part in path:
    owner = getattr(owner, part)
original, calls = getattr(owner, attribute), []
def killer(*args, **kwargs):
    calls.append(1)
    if len(calls) == nth and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    result = original(*args, **kwargs)
    if len(calls) == nth:
        os.kill(os.getpid(), signal.SIGKILL)
    return result
setattr(owner, attribute, killer)
from toolkit.cli import main
sys.argv = ["toolkit", "release"]
main()
"""
KILL_POINTS = {   # function, which call, killed before or after it; what the next release must find
    "while filling the bundle": ("toolkit.governance.release", "_copy", 5, "before", "staging"),
    "after writing the manifest": ("toolkit.registry.bundle", "Bundle.manifest_files", 1, "after", "staging"),
    "at the rename into place": ("pathlib", "Path.rename", 1, "before", "staging"),
    "before the ledger entry": ("toolkit.registry.ledger", "append", 1, "before", "orphan"),
    "right after the ledger entry": ("toolkit.registry.ledger", "append", 1, "after", "released"),
}


@pytest.mark.e2e
def test_a_release_killed_at_any_point_leaves_a_registry_the_next_release_and_verify_handle(pipeline_copy):
    """One registry, killed at each point in turn; after each kill the next release goes through,
    verifies, and never takes a number a bundle already had."""
    import sys

    registry = pipeline_copy / "registry"
    run_in(pipeline_copy, "toolkit", "release", check=True)                         # v1, a good release
    released, used = ["1"], 1
    for point, (module, name, nth, when, left) in KILL_POINTS.items():
        killed = run_in(pipeline_copy, sys.executable, "-c", KILLER, module, name, str(nth), when)
        assert killed.returncode == -9, (point, killed.stdout + killed.stderr)
        attempted = str(used + 1)
        versions = [json.loads(line)["version"] for line in (registry / "ledger.jsonl").read_text().splitlines()]
        assert versions == released + ([attempted] if left == "released" else []), point
        assert bool(list((registry / "releases").glob(".staging-*"))) == (left == "staging"), point
        assert (registry / f"releases/v{attempted}").is_dir() == (left != "staging"), point
        if left == "released":
            released.append(attempted)
        used += left != "staging"
        result = run_in(pipeline_copy, "toolkit", "release")
        assert result.returncode == 0 and "Traceback" not in result.stderr, (point, result.stderr)
        used += 1
        assert f"released version {used}" in result.stdout, (point, result.stdout)
        released.append(str(used))
        assert not list((registry / "releases").glob(".staging-*"))
        assert run_in(pipeline_copy, "toolkit", "verify", f"registry/releases/v{used}").returncode == 0, point
        if left != "staging":           # recorded: verify passes it; an orphan was never recorded: it fails
            verified = run_in(pipeline_copy, "toolkit", "verify", f"registry/releases/v{attempted}").returncode
            assert verified == (0 if left == "released" else 1), point
    assert released == ["1", "2", "3", "4", "6", "7", "8"]
    repaired = run_in(pipeline_copy, "toolkit", "release", "--repair", check=True)
    assert "released version 9" in repaired.stdout and not (registry / "releases/v5").exists()
    assert run_in(pipeline_copy, "toolkit", "verify", "registry/releases/v1").returncode == 0


@pytest.mark.e2e
def test_a_torn_ledger_line_is_refused_then_set_aside_by_repair(pipeline_copy):
    """A disk that filled up (or a kill) mid-append leaves half an entry: the next release says so
    (exit 2, line), --repair keeps the torn bytes under orphaned/ and never reuses the version."""
    registry = pipeline_copy / "registry"
    run_in(pipeline_copy, "toolkit", "release", check=True)
    run_in(pipeline_copy, "toolkit", "release", check=True)
    ledger = registry / "ledger.jsonl"
    data = ledger.read_bytes()
    first_end = data.index(b"\n") + 1
    ledger.write_bytes(data[: first_end + (len(data) - first_end) // 2])
    _exit2(run_in(pipeline_copy, "toolkit", "release"), "ledger.jsonl:2", "not completely written", "--repair")
    assert run_in(pipeline_copy, "toolkit", "verify", "registry/releases/v1").returncode == 1   # the chain is damaged
    repaired = run_in(pipeline_copy, "toolkit", "release", "--repair")
    assert repaired.returncode == 0 and "released version 3" in repaired.stdout, repaired.stderr
    (kept,) = (registry / "orphaned").glob("ledger-tail-*.txt")
    assert data[first_end:].startswith(kept.read_bytes()) and (registry / "orphaned").glob("v2-*")
    assert [json.loads(line)["version"] for line in ledger.read_text().splitlines()] == ["1", "3"]
    assert run_in(pipeline_copy, "toolkit", "verify", "registry/releases/v3").returncode == 0
    # A complete last entry that lost only its newline is not torn: the next entry goes on its own line.
    ledger.write_bytes(ledger.read_bytes().rstrip(b"\n"))
    run_in(pipeline_copy, "toolkit", "release", check=True)
    assert [json.loads(line)["version"] for line in ledger.read_text().splitlines()] == ["1", "3", "4"]


@contextlib.contextmanager
def read_only(folder):
    """A folder nobody may write, root included (root ignores permission bits: use the immutable flag)."""
    import os
    import subprocess

    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("running as root on a file system without the immutable flag: cannot make a folder read-only")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


@pytest.mark.e2e
def test_a_read_only_registry_or_reports_folder_exits_4_and_changes_nothing(pipeline_copy):
    registry = pipeline_copy / "registry"
    run_in(pipeline_copy, "toolkit", "release", check=True)
    ledger = (registry / "ledger.jsonl").read_bytes()
    with read_only(registry / "releases"):
        result = run_in(pipeline_copy, "toolkit", "release")
    assert result.returncode == 4 and "Traceback" not in result.stderr, result.stderr
    assert "registry/releases" in result.stderr and "PermissionError" in result.stderr
    assert (registry / "ledger.jsonl").read_bytes() == ledger and sorted(os_names(registry / "releases")) == ["v1"]
    gate = (pipeline_copy / "reports/gate.json").read_bytes()
    with read_only(pipeline_copy / "reports"):
        result = run_in(pipeline_copy, "toolkit", "gate")
    assert result.returncode == 4 and "reports" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert (pipeline_copy / "reports/gate.json").read_bytes() == gate
    assert not [p for p in (pipeline_copy / "reports").iterdir() if p.name.startswith(".")]


def os_names(folder):
    return [p.name for p in folder.iterdir()]


def test_a_failed_validate_leaves_no_report_or_split_of_an_earlier_run(data_project):
    """Issue #15: after an exit 2 the previous run's reports/validate.json (passed: true) stayed."""
    from pathlib import Path

    from toolkit.data.validate import run_validate

    params = data_project(_tickets(30))
    run_validate(params, progress=lambda _: None)
    outputs = [Path("reports/validate.json"), Path("reports/validate.html"), Path("artifacts/data/train.jsonl")]
    assert all(p.is_file() for p in outputs)
    with pytest.raises(DataError):
        run_validate(data_project(_tickets(29) + ["{not json"]), progress=lambda _: None)
    assert not [p for p in outputs if p.exists()]


def test_a_gate_that_cannot_run_leaves_no_earlier_verdict(project):
    (project / "reports").mkdir()
    (project / "reports/gate.json").write_text('{"stage": "gate", "passed": true}')
    (project / "reports/gate.md").write_text("PASSED")
    _exit2(run_in(project, "toolkit", "gate", "--policy", "no-such-policy"), "no-such-policy")
    assert not (project / "reports/gate.json").exists() and not (project / "reports/gate.md").exists()
