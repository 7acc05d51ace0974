"""Every supported input layout normalizes to the canonical record; every broken file is named precisely."""

import json
import shutil
from pathlib import Path

import pytest
import yaml

from toolkit.data.records import load_records
from toolkit.data.validate import run_validate
from toolkit.errors import DataError
from toolkit.files import read_jsonl

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SFT_ROWS = [
    {"messages": [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Where is my parcel?"},
                  {"role": "assistant", "content": "It ships tomorrow."}]},
    {"messages": [{"role": "user", "content": "Can I pay by invoice?"}, {"role": "assistant", "content": "Yes, for business accounts."}]},
]
PREFERENCE_ROWS = [
    {"prompt": [{"role": "user", "content": "Where is my parcel?"}], "chosen": [{"role": "assistant", "content": "It ships tomorrow."}],
     "rejected": [{"role": "assistant", "content": "No idea."}]},
    {"prompt": [{"role": "user", "content": "Can I pay by invoice?"}],
     "chosen": [{"role": "assistant", "content": "Yes, for business accounts."}], "rejected": [{"role": "assistant", "content": "Maybe."}]},
]
TOOLS = [{"type": "function", "function": {
    "name": "get_order_status", "description": "The shipping status of an order.",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}},
    {"type": "function", "function": {
        "name": "cancel_order", "description": "Cancel an order that has not shipped.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}, "reason": {"type": "string"}},
                       "required": ["order_id"]}}}]
TOOL_ROWS = [
    {"messages": [{"role": "system", "content": "You are the order desk."},
                  {"role": "user", "content": "What is the status of order 4417?"},
                  {"role": "assistant", "content": "", "tool_calls": [
                      {"type": "function", "function": {"name": "get_order_status", "arguments": {"order_id": "4417"}}}]},
                  {"role": "tool", "content": '{"status": "in transit", "eta": "Thursday"}'},
                  {"role": "assistant", "content": "Order 4417 is in transit and should arrive on Thursday."}], "tools": TOOLS},
    {"messages": [{"role": "user", "content": "Please cancel order 9120, I ordered the wrong size."},
                  {"role": "assistant", "content": "", "tool_calls": [
                      {"type": "function", "function": {"name": "cancel_order",
                                                        "arguments": {"order_id": "9120", "reason": "wrong size"}}}]},
                  {"role": "tool", "content": '{"cancelled": true}'},
                  {"role": "assistant", "content": "Order 9120 is cancelled; the refund follows in 3 to 5 days."}], "tools": TOOLS},
]
KTO_ROWS = [
    {"prompt": [{"role": "user", "content": "Where is my parcel?"}], "completion": [{"role": "assistant", "content": "It ships tomorrow."}],
     "label": True},
    {"prompt": [{"role": "user", "content": "Can I pay by invoice?"}], "completion": [{"role": "assistant", "content": "Maybe."}],
     "label": False},
]


@pytest.mark.parametrize("name, layout, rows", [
    ("chat.jsonl", "chat", SFT_ROWS),
    ("chat_array.json", "chat", SFT_ROWS),
    ("sharegpt.jsonl", "sharegpt", SFT_ROWS),
    ("prompt_completion.jsonl", "prompt_completion", SFT_ROWS),
    ("preference.jsonl", "preference", PREFERENCE_ROWS),
    ("chat_preference.jsonl", "chat_preference", PREFERENCE_ROWS),
    ("sharegpt_preference.jsonl", "sharegpt_preference", PREFERENCE_ROWS),
    ("kto.jsonl", "kto", KTO_ROWS),
    ("chat_kto.jsonl", "chat_kto", KTO_ROWS),            # TRL's conversational KTO: the last turn is the completion
    ("sharegpt_kto.jsonl", "sharegpt_kto", KTO_ROWS),
    ("chat_parts.jsonl", "chat", SFT_ROWS),              # content as typed text parts, joined as templates do
    ("chat_tools.jsonl", "chat", TOOL_ROWS),             # OpenAI tool_calls (arguments as JSON text), tool turns, tools
    ("sharegpt_tools.jsonl", "sharegpt", TOOL_ROWS),     # LLaMA-Factory: function_call, observation, tools as JSON text
])
def test_each_layout_normalizes_to_the_canonical_record(name, layout, rows):
    parsed = load_records(FIXTURES / "formats" / name)
    assert not parsed.problems
    assert parsed.layout == layout
    assert [r.as_row() for r in parsed.records] == rows


def test_alpaca_puts_instruction_and_input_in_the_user_turn(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"instruction": "Translate.", "input": "Hallo", "output": "Hello"}) + "\n")
    record = load_records(path).records[0]
    assert record.as_row() == {"messages": [{"role": "user", "content": "Translate.\n\nHallo"},
                                            {"role": "assistant", "content": "Hello"}]}
    assert load_records(FIXTURES / "formats/alpaca.jsonl").records[0].as_row() == SFT_ROWS[0]


def test_a_named_format_rejects_other_layouts():
    parsed = load_records(FIXTURES / "formats/chat.jsonl", "sharegpt")
    assert not parsed.records and [p.line for p in parsed.problems] == [1, 2]
    assert "data.format: sharegpt" in parsed.problems[0].message
    assert load_records(FIXTURES / "formats/chat_preference.jsonl", "preference").layout == "chat_preference"


@pytest.mark.parametrize("name", ["chat.jsonl", "sharegpt.jsonl", "alpaca.jsonl", "prompt_completion.jsonl",
                                  "preference.jsonl", "sharegpt_preference.jsonl", "kto.jsonl", "chat_kto.jsonl",
                                  "sharegpt_kto.jsonl", "chat_parts.jsonl", "chat_tools.jsonl", "sharegpt_tools.jsonl"])
def test_each_layout_passes_the_whole_stage(data_project, name):
    shutil.copy(FIXTURES / "formats" / name, Path("data") / name)
    params = data_project([], name="unused.jsonl")
    params = params.model_copy(update={"data": params.data.model_copy(update={"path": f"data/{name}", "heldout_fraction": 0.01})})
    report = run_validate(params, progress=lambda _: None)
    assert report.records_out == 2 and report.kind == {"preference.jsonl": "preference", "sharegpt_preference.jsonl": "preference",
                                                       "kto.jsonl": "kto", "chat_kto.jsonl": "kto",
                                                       "sharegpt_kto.jsonl": "kto"}.get(name, "sft")
    rows = [row for split in ("train", "validation", "heldout") for row in read_jsonl(f"artifacts/data/{split}.jsonl")]
    assert len(rows) == 2 and all(set(row) in ({"messages"}, {"messages", "tools"}, {"prompt", "chosen", "rejected"},
                                               {"prompt", "completion", "label"}) for row in rows)
    if "tools" in name:
        assert report.tool_calls.records_with_tools == 2 and report.tool_calls.tool_calls == 2
        assert report.tool_calls.invalid_calls == 0
        assert report.tool_calls.declared_tools == ["cancel_order", "get_order_status"]


BROKEN = yaml.safe_load((FIXTURES / "broken/expected.yaml").read_text())


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_files_stop_with_file_line_and_field(data_project, name):
    shutil.copy(FIXTURES / "broken" / name, Path("data") / name)
    params = data_project([], name="unused.jsonl")
    params = params.model_copy(update={"data": params.data.model_copy(update={"path": f"data/{name}"})})
    with pytest.raises(DataError) as error:
        run_validate(params, progress=lambda _: None)
    assert str(error.value).startswith("data/" + BROKEN[name]), str(error.value)
    assert error.value.exit_code == 2
    assert not Path("artifacts/data/train.jsonl").exists()


def test_every_broken_file_has_an_expectation():
    assert sorted(p.name for p in (FIXTURES / "broken").iterdir() if p.name != "expected.yaml") == sorted(BROKEN)


def test_a_long_answer_is_named_as_the_field_that_is_long(data_project):
    """Issue #15: a ShareGPT preference record whose chosen answer was too long was reported against
    the prompt. The problem names the turn or answer that is long, as the file spells it."""
    long = "word " * 300
    rows = [{"conversations": [{"from": "human", "value": f"Question {i}?"}], "chosen": {"from": "gpt", "value": "Fine."},
             "rejected": {"from": "gpt", "value": "No."}} for i in range(6)]
    rows[2]["chosen"]["value"] = long
    rows[4]["conversations"] = [{"from": "system", "value": "Be brief."}, {"from": "human", "value": long}]
    rows[5]["rejected"] = [{"role": "assistant", "content": "   "}]
    params = data_project(rows, max_turn_tokens=100)
    with pytest.raises(DataError) as error:
        run_validate(params, progress=lambda _: None)
    message = str(error.value)
    assert "data/d.jsonl:3: field 'chosen': every turn and answer is 1 to data.max_turn_tokens" in message, message
    assert "data/d.jsonl:5: field 'conversations[1].value': every turn" in message, message
    assert "data/d.jsonl:6: field 'rejected': " in message, message
