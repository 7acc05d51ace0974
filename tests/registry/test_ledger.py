import json
import multiprocessing

from toolkit.errors import LedgerError
from toolkit.registry import ledger


def _append_many(path: str, worker: int, count: int) -> None:
    from pathlib import Path

    for index in range(count):
        with ledger.locked(Path(path)):
            ledger.append(Path(path), {"version": f"{worker}-{index}"})


def _lines(path):
    return path.read_text().splitlines()


def test_appends_form_an_intact_chain(tmp_path):
    path = tmp_path / "ledger.jsonl"
    for version in ("1", "2", "3"):
        entry = ledger.append(path, {"version": version})
    entries = ledger.read_entries(path)
    assert [e["version"] for e in entries] == ["1", "2", "3"]
    assert entries[0]["prev_sha256"] == ledger.GENESIS
    assert entries[2]["prev_sha256"] == entries[1]["entry_sha256"] and entry == entries[2]
    assert ledger.check_chain(path) == []


def test_edited_deleted_reordered_or_garbled_lines_are_detected(tmp_path):
    path = tmp_path / "ledger.jsonl"
    for version in ("1", "2", "3"):
        ledger.append(path, {"version": version})
    original = _lines(path)

    edited = json.loads(original[1])
    edited["version"] = "2b"
    path.write_text("\n".join([original[0], json.dumps(edited), original[2]]) + "\n")
    assert any("line 2 was edited" in p.message for p in ledger.check_chain(path))

    path.write_text("\n".join([original[0], original[2]]) + "\n")
    assert any("line 2 does not follow" in p.message for p in ledger.check_chain(path))

    path.write_text("\n".join([original[1], original[0], original[2]]) + "\n")
    assert ledger.check_chain(path)

    path.write_text("\n".join([original[0], original[1][:-5], original[2]]) + "\n")
    assert "not valid JSON" in ledger.check_chain(path)[0].message


def test_appending_to_a_broken_chain_is_refused(tmp_path):
    path = tmp_path / "ledger.jsonl"
    ledger.append(path, {"version": "1"})
    ledger.append(path, {"version": "2"})
    path.write_text(_lines(path)[1] + "\n")
    try:
        ledger.append(path, {"version": "3"})
    except LedgerError as exc:
        assert "broken chain" in str(exc)
    else:
        raise AssertionError("append accepted a broken chain")


def test_concurrent_appends_keep_one_valid_chain(tmp_path):
    path = tmp_path / "ledger.jsonl"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(str(path), w, 15)) for w in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    entries = ledger.read_entries(path)
    assert len(entries) == 45 and len({e["version"] for e in entries}) == 45
    assert ledger.check_chain(path) == []


def test_registry_latest_is_the_last_ledger_entry(tmp_path):
    from toolkit.registry.store import Registry

    registry = Registry(tmp_path)
    assert registry.latest() is None
    for version in ("1", "2.0.0"):
        ledger.append(registry.ledger, {"version": version})
    assert registry.latest() == tmp_path / "releases" / "v2.0.0"


def test_events_share_the_chain_but_are_not_releases(tmp_path):
    """Monitoring and rollout events between releases: the chain covers them, the release views skip
    them, a rolled-back release is no longer the latest, and version numbers come from releases only."""
    from toolkit.governance.release import next_version
    from toolkit.registry.events import append_event
    from toolkit.registry.store import Registry

    registry = Registry(tmp_path)
    release = {"base_model": "b", "data_sha256": "d" * 64, "policy": "default", "gate_passed": True,
               "time": "2026-12-01T00:00:00+00:00", "manifest_sha256": "m" * 64}
    ledger.append(registry.ledger, {**release, "version": "1"})
    append_event(registry.ledger, {"event": "monitor", "version": "1", "report_sha256": "r" * 64, "passed": True})
    ledger.append(registry.ledger, {**release, "version": "2"})
    append_event(registry.ledger, {"event": "rollout", "action": "rollback", "version": "2", "reason": "worse",
                                   "previous_release": "1"})
    assert ledger.check_chain(registry.ledger) == []
    assert [e.version for e in registry.entries()] == ["1", "2"]
    events = registry.events()
    assert [(e.event, e.version) for e in events] == [("monitor", "1"), ("rollout", "2")] and events[1].by
    assert registry.events("1")[0].report_sha256 == "r" * 64
    assert registry.latest() == tmp_path / "releases" / "v1"
    assert next_version(ledger.read_entries(registry.ledger), None) == "3"
    assert registry.orphans(ledger.read_entries(registry.ledger)) == []
