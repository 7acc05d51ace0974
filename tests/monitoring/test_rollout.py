"""`toolkit rollout`: a staged rollout decided on monitoring reports, every decision in the ledger.

Two releases made by hand (v1 in production, v2 rolling out) and synthetic logs in which both answer:
the shadow stage pairs their answers by request_id, a split stage compares two samples."""

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from production_logs import released_project, rollout_logs, write_logs
from toolkit.cli import cli
from toolkit.config import Params
from toolkit.errors import ConfigError, GateFailed
from toolkit.monitoring import rollout
from toolkit.monitoring.stage import run_monitor
from toolkit.registry import ledger as ledger_mod
from toolkit.registry.signing import generate_key, load_keys
from toolkit.registry.store import Registry

QUIET = {"progress": lambda _: None}
# The logs start when the rollout is planned (now), so how their days fall into calendar-day windows
# depends on the time of day; at some hours a window's input lengths drew a false drift alarm
# (KS 0.118, p 0.003 on lengths drawn from the training distribution itself). These tests are about
# the rollout, so input-length drift is judged only on a gross change here; its false-alarm rate is
# measured in benchmarks/monitor_false_alarms.py.
PLAN = {"monitor": {"length_distance": 0.3, "rollout": {"stages": [{"name": "shadow", "traffic": 0.0, "min_records": 300, "min_days": 1},
                                           {"name": "10pct", "traffic": 0.1, "min_records": 50, "min_days": 1},
                                           {"name": "100pct", "traffic": 1.0}]}}}


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    released_project(tmp_path, "1")
    released_project(tmp_path, "2")
    return tmp_path


def _registry(project) -> Registry:
    return Registry(project / "registry")


def _chain_intact(project) -> None:
    assert ledger_mod.check_chain(project / "registry/ledger.jsonl") == []


def _stage_start(project) -> dt.datetime:
    return rollout.rollout_state(_registry(project), "2").stage_started


def _monitor(project, params, **logs) -> None:
    write_logs(project / "logs/now.jsonl", rollout_logs(start=_stage_start(project), **logs))
    run_monitor(params, ["logs/now.jsonl"], **QUIET)


def test_plan_shadow_advance_degraded_window_rollback(project):
    params = Params.model_validate(PLAN)
    registry = _registry(project)
    state = rollout.plan(params, registry, reason="ticket triage v2")
    assert state.stage.name == "shadow" and state.previous_release == "1" and state.version == "2"
    _chain_intact(project)

    # Shadow: both releases answer every request; v2 no worse. The report is paired on request_id.
    _monitor(project, params, seed=1, days=2, per_day=300)
    report = json.loads((project / "reports/monitor.json").read_text())
    assert report["passed"] and report["rollout_stage"] == "shadow" and report["previous_release"] == "1"
    comparison = {f["name"]: f for f in report["figures"] if f["kind"] == "comparison" and f["window"] == "all"}
    assert comparison["metric:json_valid"]["paired"] is True and comparison["metric:json_valid"]["status"] == "ok"
    assert "feedback:rerouted" not in comparison        # shadow answers reach no user: no feedback to compare
    state = rollout.advance(params, registry, project / "reports/monitor.json", reason="shadow clean")
    assert state.stage.name == "10pct" and state.decisions[-1].report_sha256
    _chain_intact(project)

    # 10 %: v2 answers invalid JSON 15 points more often; two samples, significantly worse: monitor fails.
    with pytest.raises(GateFailed, match="metric:json_valid"):
        _monitor(project, params, seed=2, days=2, per_day=1500, traffic=0.1, invalid_up=0.15)
    report = json.loads((project / "reports/monitor.json").read_text())
    worse = next(f for f in report["figures"] if f["name"] == "metric:json_valid" and f["window"] == "all")
    assert worse["status"] == "failed" and worse["paired"] is False and worse["delta_high"] < 0
    with pytest.raises(GateFailed, match="failed .* rule"):
        rollout.advance(params, registry, project / "reports/monitor.json")
    state = rollout.rollback(params, registry, "JSON validity 15 points below v1 at 10 %",
                             report_file=project / "reports/monitor.json")
    assert state.rolled_back and state.previous_release == "1"
    _chain_intact(project)
    assert registry.latest() == registry.bundle("1")                 # the next canary compares with v1 again
    decisions = [(e.action, e.from_stage, e.to_stage) for e in state.decisions]
    assert decisions == [("plan", None, "shadow"), ("advance", "shadow", "10pct"),
                         ("rollback", "10pct", "rolled_back")]
    assert all(e.by and e.time for e in state.decisions) and state.decisions[-1].reason.startswith("JSON validity")
    record = rollout.status_path(registry, "2").read_text()
    assert "rolled back" in record and "JSON validity 15 points" in record and "FAILED" in record
    assert [e.event for e in registry.events()].count("monitor") == 2 and len(registry.entries()) == 2


def test_advance_needs_the_recorded_passing_report_of_this_stage_with_enough_records_and_days(project):
    params = Params.model_validate(PLAN)
    registry = _registry(project)
    with pytest.raises(ConfigError, match="no rollout to advance"):
        rollout.advance(params, registry, project / "reports/monitor.json")
    rollout.plan(params, registry)
    with pytest.raises(ConfigError, match="monitoring report not found"):
        rollout.advance(params, registry, project / "reports/monitor.json")
    _monitor(project, params, seed=3, days=1, per_day=100)          # 100 records in < 1 day: too little
    with pytest.raises(GateFailed) as refused:
        rollout.advance(params, registry, project / "reports/monitor.json")
    assert "the stage needs 300" in str(refused.value) and "it needs 1 day" in str(refused.value)
    _monitor(project, params, seed=4, days=2, per_day=300)
    report = project / "reports/monitor.json"
    edited = json.loads(report.read_text())
    edited["records_used"] += 1
    report.write_text(json.dumps(edited))                            # not the report monitor recorded
    with pytest.raises(GateFailed, match="not one `toolkit monitor` recorded"):
        rollout.advance(params, registry, report)
    with pytest.raises(ConfigError, match="already has a rollout"):
        rollout.plan(params, registry)
    _chain_intact(project)


def test_language_and_label_drift(project):
    from production_logs import production_logs

    write_logs(project / "logs/week.jsonl", production_logs(seed=5, effect_day=4, german_after=True))
    params = Params.model_validate({"monitor": {"label_field": "category"}})
    with pytest.raises(GateFailed):
        run_monitor(params, ["logs/week.jsonl"], release="1", **QUIET)
    report = json.loads((project / "reports/monitor.json").read_text())
    language = {f["window"]: f for f in report["figures"] if f["name"] == "input_language"}
    assert language["2026-11-05"]["status"] == "ok" and language["2026-11-06"]["status"] == "failed"
    assert "de " in language["2026-11-06"]["message"]
    labels = {f["window"]: f for f in report["figures"] if f["name"] == "answer_category"}
    assert all(f["status"] == "ok" for f in labels.values())         # the same four categories throughout

    rollout.plan(Params(), _registry(project))
    start = _stage_start(project)
    write_logs(project / "logs/split.jsonl", rollout_logs(seed=6, start=start, per_day=600, traffic=1.0,
                                                          categories=["billing"]))
    with pytest.raises(GateFailed, match="answer_category"):
        run_monitor(params, ["logs/split.jsonl"], **QUIET)


def test_decisions_on_a_signed_registry_are_signed_and_verify(project, monkeypatch, tmp_path_factory):
    key = generate_key(project / "registry", tmp_path_factory.mktemp("keys") / "release.key")
    params = Params.model_validate(PLAN)
    registry = _registry(project)
    monkeypatch.setenv("TOOLKIT_SIGNING_KEY", str(key.private_path))
    rollout.plan(params, registry)
    monkeypatch.delenv("TOOLKIT_SIGNING_KEY")
    # A monitoring job without the key records its event unsigned; a decision cannot be.
    _monitor(project, params, seed=7, days=2, per_day=300)
    with pytest.raises(ConfigError, match="must be signed"):
        rollout.advance(params, registry, project / "reports/monitor.json")
    monkeypatch.setenv("TOOLKIT_SIGNING_KEY", str(key.private_path))
    rollout.advance(params, registry, project / "reports/monitor.json")
    entries = ledger_mod.read_entries(registry.ledger)
    kinds = [(e.get("event"), "signature" in e) for e in entries]
    assert kinds == [(None, False), (None, False), ("rollout", True), ("monitor", False), ("rollout", True)]
    failures, warnings = ledger_mod.signature_problems(entries, load_keys([key.public_path]), "2")
    assert any("this release's entry is not signed" in f for f in failures)      # v2 itself was released unsigned
    assert "line 4 (v2 monitor event): unsigned" in warnings
    assert not [f for f in failures if "event" in f]


def test_cli_exit_codes_and_status(project):
    (project / "params.yaml").write_text("seed: 1234\n")
    runner = CliRunner()
    assert runner.invoke(cli, ["rollout", "status"]).output.startswith("release 2: no rollout planned")
    planned = runner.invoke(cli, ["rollout", "plan", "--reason", "first"])
    assert planned.exit_code == 0 and "shadow (0%) -> 10pct (10%) -> 50pct (50%) -> 100pct (100%)" in planned.output
    assert "replaces v1" in planned.output
    assert runner.invoke(cli, ["rollout", "plan"]).exit_code == 2
    assert runner.invoke(cli, ["rollout", "plan", "--release", "9"]).exit_code == 2
    assert runner.invoke(cli, ["rollout", "advance"]).exit_code == 2        # no report yet
    assert runner.invoke(cli, ["rollout", "rollback"]).exit_code == 2       # --reason is required
    status = runner.invoke(cli, ["rollout", "status"])
    assert "stage 1 of 4, shadow" in status.output and "at least 200 record(s)" in status.output
    back = runner.invoke(cli, ["rollout", "rollback", "--reason", "<b>bad</b> answers"])
    assert back.exit_code == 0 and "traffic returns to v1" in back.output
    record = (project / "registry/rollout/v2.md").read_text()
    assert "&lt;b&gt;bad&lt;/b&gt;" in record and "<b>" not in record


@pytest.mark.e2e
def test_rollout_of_the_demo_end_to_end(pipeline_copy):
    """The demo released twice (v1 serves, v2 rolls out): plan, shadow logs, advance to 10 %, a degraded
    window, rollback; the ledger and the bundle verify after each step."""
    from conftest import run_in
    from toolkit.files import read_jsonl

    def verified():
        result = run_in(pipeline_copy, "toolkit", "verify", "registry/releases/v2")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "[PASS] ledger chain" in result.stdout

    def logs(name, start, broken_every=0, paired=True):
        rows = []
        for day in range(2):
            for i, ticket in enumerate(tickets):
                *prompt, reference = ticket["messages"]
                when = (start + dt.timedelta(days=day, hours=1 + i % 20, minutes=i % 60)).isoformat()
                for release in ("1", "2"):
                    broken = release == "2" and broken_every and i % broken_every == 0
                    rows.append({"time": when, "release": release, "messages": prompt,
                                 **({"request_id": f"{day}-{i}"} if paired else {}),
                                 "response": "I cannot answer that." if broken else reference["content"],
                                 "latency_ms": 50 + i % 40, "prompt_tokens": 60, "completion_tokens": 25})
        return write_logs(pipeline_copy / "logs" / name, rows)

    tickets = list(read_jsonl(pipeline_copy / "artifacts/data/heldout.jsonl"))
    for _ in range(2):
        run_in(pipeline_copy, "toolkit", "release", check=True)
    card = (pipeline_copy / "registry/releases/v2/model_card/README.md").read_text()
    assert "Planned rollout" in card and "registry/rollout/v2.md" in card
    techdoc = (pipeline_copy / "registry/releases/v2/model_card/technical_documentation.md").read_text()
    assert "| shadow | 0 % | 200 | 1.0 |" in techdoc
    planned = run_in(pipeline_copy, "toolkit", "rollout", "plan", "--reason", "demo v2")
    assert planned.returncode == 0 and "replaces v1" in planned.stdout, planned.stdout + planned.stderr
    verified()
    start = rollout.rollout_state(Registry(pipeline_copy / "registry"), "2").stage_started

    logs("shadow.jsonl", start)
    shadow = run_in(pipeline_copy, "toolkit", "monitor", "logs/shadow.jsonl")
    assert shadow.returncode == 0, shadow.stdout + shadow.stderr
    advanced = run_in(pipeline_copy, "toolkit", "rollout", "advance", "--reason", "shadow clean")
    assert advanced.returncode == 0 and "10pct" in advanced.stdout, advanced.stdout + advanced.stderr
    verified()

    stage = rollout.rollout_state(Registry(pipeline_copy / "registry"), "2").stage_started
    logs("degraded.jsonl", stage, broken_every=3, paired=False)
    degraded = run_in(pipeline_copy, "toolkit", "monitor", "logs/degraded.jsonl")
    assert degraded.returncode == 1 and "comparison metric:json_valid" in degraded.stderr, degraded.stderr
    assert run_in(pipeline_copy, "toolkit", "rollout", "advance").returncode == 1
    back = run_in(pipeline_copy, "toolkit", "rollout", "rollback", "--reason", "a third of the answers not JSON",
                  "--report", "reports/monitor.json")
    assert back.returncode == 0 and "traffic returns to v1" in back.stdout, back.stdout + back.stderr
    verified()
    history = run_in(pipeline_copy, "toolkit", "history", check=True).stdout
    assert "rolled_back" in history
    record = (pipeline_copy / "registry/rollout/v2.md").read_text()
    assert "| rollback | 10pct | rolled_back |" in record and "FAILED" in record
