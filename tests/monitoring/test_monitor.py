"""`toolkit monitor`: synthetic production logs with known effects against a release; the monitor must
find each effect on the right day and figure, and stay quiet on logs without one."""

import gzip
import json

import pytest
from click.testing import CliRunner

from production_logs import production_logs, released_project, write_logs
from toolkit.cli import cli
from toolkit.config import Params
from toolkit.errors import ConfigError, DataError, GateFailed
from toolkit.monitoring import logs
from toolkit.monitoring.observe import read_chunks
from toolkit.monitoring.stage import run_monitor

QUIET = {"progress": lambda _: None}
DAYS = ["2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05", "2026-11-06", "2026-11-07", "2026-11-08"]


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    released_project(tmp_path)
    return tmp_path


def _failed(project) -> set[tuple[str, str]]:
    report = json.loads((project / "reports/monitor.json").read_text())
    return {(f["window"], f["name"]) for f in report["figures"] if f["status"] == "failed"}


def test_logs_without_an_effect_pass_and_every_figure_is_judged(project):
    write_logs(project / "logs/week.jsonl.gz", production_logs(seed=1))
    report = run_monitor(Params(), ["logs"], **QUIET)
    assert report.passed and report.release == "1" and report.windows == DAYS
    assert report.records_used == 7 * 400 and report.bad_records == 0 and report.layouts == {"toolkit": 2800}
    names = {(f.kind, f.name) for f in report.figures}
    assert {("metric", "json_valid"), ("metric", "ticket_schema"), ("feedback", "rerouted"), ("feedback", "negative"),
            ("drift", "input_words"), ("drift", "inputs_with_pii"), ("drift", "inputs_with_injection")} <= names
    assert ("metric", "field_accuracy") not in names          # needs a reference: not scored on logs
    overall = {f.name: f for f in report.figures if f.window == "all"}
    assert overall["json_valid"].status == "ok" and overall["json_valid"].reference == 0.97
    assert abs(overall["json_valid"].value - 0.97) < 0.02 and overall["json_valid"].ci_low < overall["json_valid"].value
    assert report.inputs["logs/week.jsonl.gz"] and (project / "reports/monitor/index.html").is_file()
    assert report.serving["requests_per_day"] == 400 and report.serving["cost_per_day"] == 2.4


@pytest.mark.parametrize("effect, figure", [
    ({"invalid_up": 0.08}, "json_valid"),
    ({"rerouted_after": 0.25}, "rerouted"),
    ({"german_after": True}, "input_words"),
])
def test_each_effect_is_found_from_its_day_on_and_not_before(project, effect, figure):
    write_logs(project / "logs/week.jsonl", production_logs(seed=2, effect_day=4, **effect))
    with pytest.raises(GateFailed, match=f"monitoring FAILED for release 1: .*{figure}"):
        run_monitor(Params(), ["logs/week.jsonl"], **QUIET)
    flagged = {window for window, name in _failed(project) if name == figure}
    assert flagged >= set(DAYS[4:]) and not flagged & set(DAYS[:4]), flagged


def test_weekly_windows_and_a_time_range(project):
    write_logs(project / "logs/a.jsonl", production_logs(seed=3, days=14))
    report = run_monitor(Params.model_validate({"monitor": {"window": "week"}}), ["logs"], **QUIET)
    assert report.windows == ["2026-W45", "2026-W46"]
    import datetime as dt

    since = dt.datetime(2026, 11, 9, tzinfo=dt.timezone.utc)
    later = run_monitor(Params(), ["logs"], since=since, **QUIET)
    assert later.windows[0] == "2026-11-09" and later.records_used == 7 * 400


def test_openai_style_request_response_logs_are_read(project):
    rows = production_logs(seed=4, days=1, per_day=60)
    converted = [{"request": {"model": "v1", "messages": row["messages"]},
                  "response": {"created": 1762128000 + i, "choices": [{"message": {"role": "assistant",
                                                                                   "content": row["response"]}}],
                               "usage": {"prompt_tokens": 50, "completion_tokens": 20}},
                  "latency_ms": 120, "metadata": {"feedback": row["feedback"]}} for i, row in enumerate(rows)]
    write_logs(project / "logs/gateway.jsonl", converted)
    report = run_monitor(Params(), ["logs/gateway.jsonl"], **QUIET)
    assert report.layouts == {"openai": 60} and report.records_used == 60 and report.windows == ["2025-11-03"]
    assert report.serving["tokens_per_request"] == 70.0


def test_bad_records_are_counted_and_named_and_too_many_stop_the_run(project):
    rows = [json.dumps(row) for row in production_logs(seed=5, days=1, per_day=100)]
    rows[3] = "{not json"
    rows[10] = json.dumps({**json.loads(rows[10]), "time": "yesterday"})
    rows[20] = json.dumps({**json.loads(rows[20]), "latency_ms": -5})
    (project / "logs").mkdir()
    (project / "logs/day.jsonl").write_text("\n".join(rows) + "\n")
    report = run_monitor(Params(), ["logs/day.jsonl"], **QUIET)
    assert report.bad_records == 3 and report.records_used == 97
    assert [(b["line"], b["field"]) for b in report.bad_examples] == [(4, "(record)"), (11, "time"), (21, "latency_ms")]
    strict = Params.model_validate({"monitor": {"max_bad_fraction": 0.01}})
    with pytest.raises(DataError, match=r"(?s)logs/day.jsonl:4: field '\(record\)': not JSON .*:11: field 'time'.*3 of 100 records unreadable"):
        run_monitor(strict, ["logs/day.jsonl"], **QUIET)


def test_undecodable_bytes_and_gzip_are_read_line_by_line(tmp_path):
    good = json.dumps(production_logs(seed=6, days=1, per_day=2)[0]).encode()
    path = tmp_path / "mixed.jsonl.gz"
    path.write_bytes(gzip.compress(good + b"\n\xff\xfe broken\n" + good + b"\n"))
    digests = {}
    chunks = list(read_chunks([path], digests))
    lines = [number for _, chunk in chunks for number, _ in chunk]
    assert lines == [1, 2, 3] and digests[str(path)]
    records = [logs.parse_record(json.loads(raw), "f", n) for _, chunk in chunks for n, raw in chunk if n != 2]
    assert len(records) == 2
    with pytest.raises(json.JSONDecodeError):
        json.loads(chunks[0][1][1][1])           # the undecodable line: a bad record with its number, not a crash


def test_no_release_another_release_and_a_missing_file_are_clear(project, tmp_path_factory, monkeypatch):
    write_logs(project / "logs/other.jsonl", production_logs(seed=7, days=1, per_day=5, release="7"))
    with pytest.raises(DataError, match=r"no record of release 1 in the logs \(releases seen: 7 \(5\)\)"):
        run_monitor(Params(), ["logs/other.jsonl"], **QUIET)
    with pytest.raises(ConfigError, match="release 9 is not in the ledger"):
        run_monitor(Params(), ["logs/other.jsonl"], release="9", **QUIET)
    empty = tmp_path_factory.mktemp("empty")
    monkeypatch.chdir(empty)
    with pytest.raises(ConfigError, match="no release in registry"):
        run_monitor(Params(), [str(project / "logs/other.jsonl")], **QUIET)


def test_cli_exit_codes_and_an_escaped_html_report(project):
    rows = production_logs(seed=8, days=2, per_day=200, effect_day=1, invalid_up=0.2)
    rows[0]["release"] = "<script>alert(1)</script>"
    write_logs(project / "logs/a.jsonl", rows)
    (project / "params.yaml").write_text("seed: 1234\n")
    failed = CliRunner().invoke(cli, ["monitor", "logs/a.jsonl"])
    assert failed.exit_code == 1 and "monitoring FAILED" in failed.output and "json_valid" in failed.output
    html = (project / "reports/monitor/index.html").read_text()
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert CliRunner().invoke(cli, ["monitor", "logs/a.jsonl", "--until", "2026-11-03"]).exit_code == 0
    assert CliRunner().invoke(cli, ["monitor", "logs/a.jsonl", "--since", "last tuesday"]).exit_code == 2
    assert CliRunner().invoke(cli, ["monitor", "nowhere.jsonl"]).exit_code == 2


@pytest.mark.e2e
def test_monitoring_a_real_release_of_the_pipeline(pipeline_copy):
    """The demo released, then two days of production: the held-out tickets answered with their
    reference answers, then with broken JSON on the second day."""
    from conftest import run_in
    from toolkit.files import read_jsonl

    run_in(pipeline_copy, "toolkit", "release", check=True)
    tickets = list(read_jsonl(pipeline_copy / "artifacts/data/heldout.jsonl"))
    rows = []
    for day, broken in ((2, False), (3, True)):
        for i, ticket in enumerate(tickets):
            *prompt, reference = ticket["messages"]
            rows.append({"time": f"2026-12-0{day}T{i % 24:02d}:00:00Z", "release": "1", "messages": prompt,
                         "response": "I cannot answer that." if broken and i % 3 == 0 else reference["content"],
                         "latency_ms": 50 + i % 40, "prompt_tokens": 60, "completion_tokens": 25,
                         "feedback": {"rerouted": i % 25 == 0}})
    write_logs(pipeline_copy / "logs/december.jsonl", rows)
    good = run_in(pipeline_copy, "toolkit", "monitor", "logs", "--until", "2026-12-03")
    assert good.returncode == 0, good.stdout + good.stderr
    report = json.loads((pipeline_copy / "reports/monitor.json").read_text())
    figures = {(f["kind"], f["name"]) for f in report["figures"]}
    assert {("metric", "json_valid"), ("metric", "ticket_schema"), ("drift", "input_words")} <= figures
    input_words = next(f for f in report["figures"] if f["name"] == "input_words" and f["window"] == "all")
    assert input_words["status"] == "ok" and input_words["p_value"] is not None    # the release's own split
    assert report["serving"]["cost_per_day"] is not None and report["serving"]["currency"]
    bad = run_in(pipeline_copy, "toolkit", "monitor", "logs")
    assert bad.returncode == 1 and "2026-12-03: metric json_valid" in bad.stderr, bad.stderr


def test_failed_and_negatively_rated_records_are_exported_for_review_redacted(project):
    from toolkit.data.records import load_records

    rows = production_logs(seed=9, days=1, per_day=50)
    rows[0]["response"] = "Sorry, no JSON today."
    rows[1]["feedback"] = {"rating": 1}
    rows[2]["messages"][1]["content"] = "Call me on +49 30 901820 or jane.doe@example.org, my kettle is broken."
    rows[2]["feedback"] = {"rerouted": True}
    for row in rows[3:]:
        row["feedback"] = {"rerouted": False, "rating": 5}
        row["response"] = json.dumps({"category": "billing", "priority": "low", "product": "Aero Kettle"})
    write_logs(project / "logs/day.jsonl", rows)
    run_monitor(Params(), ["logs/day.jsonl"], export_review=project / "review.jsonl", **QUIET)
    exported = sorted((json.loads(line) for line in (project / "review.jsonl").read_text().splitlines()),
                      key=lambda row: row["provenance"]["line"])        # written in time order
    assert [row["provenance"]["line"] for row in exported] == [1, 2, 3]
    assert exported[0]["provenance"]["reasons"] == ["failed json_valid", "failed ticket_schema"]
    assert exported[1]["provenance"]["reasons"] == ["rating 1"] and exported[2]["provenance"]["reasons"] == ["feedback rerouted"]
    assert exported[0]["provenance"]["source"] == "production log, 2026-11-02"
    text = json.dumps(exported)
    assert "jane.doe@example.org" not in text and "901820" not in text and "[EMAIL]" in text
    assert exported[0]["messages"][-1] == {"role": "assistant", "content": "Sorry, no JSON today."}
    parsed = load_records(project / "review.jsonl")           # the data stage reads it as it is
    assert parsed.layout == "chat" and len(parsed.records) == 3 and not parsed.problems


def test_worker_processes_give_the_same_report_as_one_process(project):
    """Chunks scored in two forked workers, tallied in the parent: the same figures, counts and export."""
    write_logs(project / "logs/week.jsonl", production_logs(seed=11, days=3, per_day=3000, effect_day=2,
                                                            invalid_up=0.1))
    reports = []
    for workers in (1, 2):
        with pytest.raises(GateFailed):
            run_monitor(Params(), ["logs/week.jsonl"], workers=workers, export_review=project / f"review{workers}.jsonl",
                        **QUIET)
        reports.append(json.loads((project / "reports/monitor.json").read_text()))
    one, two = reports
    assert one["figures"] == two["figures"] and one["serving"] == two["serving"] and one["records_used"] == 9000
    assert (project / "review1.jsonl").read_bytes() == (project / "review2.jsonl").read_bytes()
