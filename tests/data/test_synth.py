import json
from pathlib import Path

from click.testing import CliRunner

from toolkit.cli import cli
from toolkit.data.synth import CATEGORIES, PRIORITIES, PRODUCTS, pretraining_corpus, support_ticket_records

REPO = Path(__file__).resolve().parents[2]


def test_same_seed_same_records_other_seed_other_records():
    assert support_ticket_records(200, 5) == support_ticket_records(200, 5)
    assert support_ticket_records(200, 5) != support_ticket_records(200, 6)
    assert pretraining_corpus(100, 5) == pretraining_corpus(100, 5)


def test_records_are_distinct_and_labels_valid():
    records = support_ticket_records(500, 11)
    tickets = [r["messages"][1]["content"] for r in records]
    assert len(set(tickets)) == 500
    for record in records:
        roles = [m["role"] for m in record["messages"]]
        assert roles == ["system", "user", "assistant"]
        answer = json.loads(record["messages"][2]["content"])
        assert answer["category"] in CATEGORIES and answer["priority"] in PRIORITIES
        assert answer["product"] in PRODUCTS and answer["product"] in record["messages"][1]["content"]


def test_pretraining_corpus_never_contains_the_task_format():
    for item in pretraining_corpus(500, 3):
        text = item if isinstance(item, str) else " ".join(m["content"] for m in item)
        assert '"category"' not in text and '"priority"' not in text


def test_committed_default_dataset_is_reproducible(tmp_path):
    out = tmp_path / "tickets.jsonl"
    result = CliRunner().invoke(cli, ["data", "synth", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == (REPO / "data/support_tickets.jsonl").read_bytes()


def test_mmlu_probe_is_reproduced_in_mmlu_layout_and_shares_no_passage_with_the_tickets(tmp_path):
    from toolkit.data.dedup import content_texts
    from toolkit.data.decontamination import OverlapChecker, evaluation_files_words
    from toolkit.data.records import load_records

    repo = Path(__file__).resolve().parents[2]
    result = CliRunner().invoke(cli, ["data", "synth-mmlu", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for shipped in sorted((repo / "eval_suites/mmlu_local/data").glob("*.jsonl")):
        assert (tmp_path / shipped.name).read_bytes() == shipped.read_bytes(), shipped.name
        first = json.loads(shipped.read_text().splitlines()[0])
        assert set(first) == {"question", "subject", "choices", "answer"} and len(first["choices"]) == 4
        assert first["choices"][first["answer"]]
    records = load_records(repo / "data/support_tickets.jsonl").records
    checker = OverlapChecker([content_texts(r) for r in records], [r.line for r in records], 13, 0.01, 10)
    for suite in evaluation_files_words(repo / "eval_suites/mmlu_local/data"):
        assert checker.check(suite.name, suite.lines, suite.texts)[0].contaminated_items == 0, suite.name


def test_varied_chat_is_untemplated_with_a_wide_long_tailed_length_distribution(tmp_path):
    from toolkit.data.synth_varied import varied_chat_records

    records = varied_chat_records(2000, seed=3)
    assert records == varied_chat_records(2000, seed=3) and records != varied_chat_records(2000, seed=4)
    turns = [m["content"] for r in records for m in r["messages"]]
    assert len(set(turns)) > 0.995 * len(turns)                  # only the odd one- or two-word turn repeats
    words = sorted(len(t.split()) for t in turns)
    median, p99 = words[len(words) // 2], words[int(len(words) * 0.99)]
    assert 25 <= median <= 60 and p99 > 5 * median and words[0] >= 1      # long tail
    roles = [[m["role"] for m in r["messages"] if m["role"] != "system"] for r in records]
    assert all(r[0::2] == ["user"] * (len(r) // 2) and r[1::2] == ["assistant"] * (len(r) // 2) for r in roles)
    assert {len(r) // 2 for r in roles} == {1, 2, 3, 4}
    out = tmp_path / "varied.jsonl"
    result = CliRunner().invoke(cli, ["data", "synth", "--varied", "--count", "50", "--out", str(out)])
    assert result.exit_code == 0 and len(out.read_text().splitlines()) == 50
