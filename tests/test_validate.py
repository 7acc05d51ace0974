import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from toolkit.cli import cli
from toolkit.config import Params
from toolkit.data.records import load_chat_file
from toolkit.data.splits import assign_split
from toolkit.data.validate import run_validate
from toolkit.errors import DataError
from toolkit.files import read_jsonl

REPO = Path(__file__).resolve().parents[1]
GOOD = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


def _project(root: Path, lines: list[str], quarantine: bool = False) -> Params:
    (root / "data").mkdir(exist_ok=True)
    (root / "data/d.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    shutil.copy(REPO / "data/support_tickets.datasheet.yaml", root / "data/d.datasheet.yaml")
    return Params.model_validate({"data": {"path": "data/d.jsonl", "datasheet": "data/d.datasheet.yaml",
                                           "quarantine": quarantine}})


def _record(i: int) -> str:
    return json.dumps({"messages": [{"role": "user", "content": f"question {i}"},
                                    {"role": "assistant", "content": f"answer {i}"}]})


def test_valid_data_is_split_and_reported(in_tmp):
    params = _project(in_tmp, [_record(i) for i in range(200)])
    report = run_validate(params)
    assert report.passed and report.records_in == report.records_valid == 200
    assert sum(report.splits.values()) == 200 and all(report.splits[s] > 0 for s in report.splits)
    assert all(e.success for e in report.expectations)
    assert report.datasheet["license"] and report.inputs["data/d.jsonl"] == report.data_sha256
    split_rows = {s: list(read_jsonl(in_tmp / f"artifacts/data/{s}.jsonl")) for s in report.splits}
    as_text = {s: {json.dumps(r, sort_keys=True) for r in rows} for s, rows in split_rows.items()}
    assert not (as_text["train"] & as_text["heldout"]) and not (as_text["train"] & as_text["validation"])


def test_malformed_json_line_names_file_and_line(in_tmp):
    params = _project(in_tmp, [_record(0), "{not json", _record(2)])
    with pytest.raises(DataError, match=r"data/d.jsonl:2: field '\(line\)': invalid JSON"):
        run_validate(params)
    assert not (in_tmp / "artifacts/data/train.jsonl").exists()


@pytest.mark.parametrize("record, field", [
    ({"prompt": "x", "completion": "y"}, "messages"),
    ({"messages": [{"role": "bot", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
    ([1, 2], "(record)"),
])
def test_wrong_layout_names_the_field(in_tmp, record, field):
    params = _project(in_tmp, [_record(0), json.dumps(record)])
    with pytest.raises(DataError) as err:
        run_validate(params)
    assert f"data/d.jsonl:2: field '{field}'" in str(err.value)


def test_expectation_suite_failures_map_to_lines(in_tmp):
    no_answer = json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]})
    empty_turn = json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "  "}]})
    params = _project(in_tmp, [_record(0), no_answer, _record(2), empty_turn])
    with pytest.raises(DataError, match=r"data/d.jsonl:2: field 'messages\[\]\.role'.*roles_alternate"):
        run_validate(params)


def test_quarantine_keeps_bad_records_with_reasons_and_counts_everything(in_tmp):
    empty_turn = json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": ""}]})
    params = _project(in_tmp, [_record(i) for i in range(20)] + ["{broken", empty_turn], quarantine=True)
    report = run_validate(params)
    assert report.records_in == 22 and report.records_valid == 20 and report.records_quarantined == 2
    quarantined = list(read_jsonl(in_tmp / "artifacts/data/quarantine.jsonl"))
    assert {q["line"] for q in quarantined} == {21, 22}
    assert any("no_empty_turns" in q["reason"] and q["record"] for q in quarantined)
    assert any("invalid JSON" in q["reason"] for q in quarantined)


def test_bad_encoding_and_empty_file(in_tmp):
    params = _project(in_tmp, [])
    with pytest.raises(DataError, match="empty"):
        run_validate(params)
    (in_tmp / "data/d.jsonl").write_bytes(_record(0).encode() + b"\n" + b'{"messages": "\xff"}\n')
    with pytest.raises(DataError, match=r"d.jsonl:2: .*UTF-8"):
        run_validate(params)


def test_json_array_files_report_the_line_of_each_element(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[\n  ' + json.dumps(GOOD) + ',\n  {"messages": []}\n]\n')
    parsed = load_chat_file(path)
    assert [r.line for r in parsed.records] == [2]
    assert parsed.problems[0].line == 3 and parsed.problems[0].field == "messages"


def test_datasheet_is_required_and_complete(in_tmp):
    params = _project(in_tmp, [_record(0)])
    sheet = yaml.safe_load((in_tmp / "data/d.datasheet.yaml").read_text())
    del sheet["legal_basis"]
    (in_tmp / "data/d.datasheet.yaml").write_text(yaml.safe_dump(sheet))
    with pytest.raises(DataError, match="legal_basis"):
        run_validate(params)
    (in_tmp / "data/d.datasheet.yaml").unlink()
    with pytest.raises(DataError, match="datasheet not found"):
        run_validate(params)


def test_splits_are_stable_when_rows_are_appended():
    records = [json.loads(_record(i))["messages"] for i in range(300)]
    before = [assign_split(m, 0.1, 0.15, 1) for m in records]
    after = [assign_split(m, 0.1, 0.15, 1) for m in records + [json.loads(_record(i))["messages"] for i in range(300, 400)]]
    assert after[:300] == before
    assert 0.08 < before.count("heldout") / 300 < 0.25


def test_cli_exit_code_2_on_bad_data(in_tmp):
    _project(in_tmp, ["{oops"])
    (in_tmp / "params.yaml").write_text("data:\n  path: data/d.jsonl\n  datasheet: data/d.datasheet.yaml\n")
    result = CliRunner().invoke(cli, ["validate"])
    assert result.exit_code == 2
    assert "data/d.jsonl:1" in result.output
