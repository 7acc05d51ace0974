import json

import pytest

from toolkit.errors import MissingInputError
from toolkit.files import atomic_write_json, sha256_file, sha256_path
from toolkit.reports import GateReport, TrainReport, digests, read_report, write_report


def test_folder_hash_depends_on_content_and_names_not_on_creation_order(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "x.bin").write_bytes(b"1"), (a / "y.bin").write_bytes(b"2")
    (b / "y.bin").write_bytes(b"2"), (b / "x.bin").write_bytes(b"1")
    assert sha256_path(a) == sha256_path(b)
    (b / "x.bin").write_bytes(b"3")
    assert sha256_path(a) != sha256_path(b)
    (b / "x.bin").write_bytes(b"1")
    (b / "x.bin").rename(b / "z.bin")
    assert sha256_path(a) != sha256_path(b)


def test_file_hash_is_sha256(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    atomic_write_json(tmp_path / "r.json", {"a": 1})
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_report_records_input_hashes_and_round_trips(tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text('{"x": 1}\n')
    report = GateReport(policy="p", policy_file="p.yaml", passed=True, blocking_failures=0, warnings=0, rules=[],
                        inputs=digests([data]))
    path = write_report(report, tmp_path / "gate.json")
    raw = json.loads(path.read_text())
    assert raw["inputs"] == {data.as_posix(): sha256_file(data)}
    assert raw["toolkit_version"] and raw["created_at"]
    assert read_report(path, GateReport) == report


def test_reading_missing_or_wrong_report_is_a_clear_error(tmp_path):
    with pytest.raises(MissingInputError, match="report not found"):
        read_report(tmp_path / "nope.json", TrainReport)
    bad = tmp_path / "bad.json"
    bad.write_text('{"stage": "train"}')
    with pytest.raises(Exception, match="not a valid TrainReport"):
        read_report(bad, TrainReport)
