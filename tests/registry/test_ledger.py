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
