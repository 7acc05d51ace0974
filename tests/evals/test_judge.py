"""The LLM judge through the real anthropic SDK against a loopback server that speaks the Messages API."""

import json
from pathlib import Path

import pytest

from anthropic_stub import AnthropicStub
from conftest import JUDGE_KEY as KEY
from sample_records import judge_items as _items
from toolkit.config import Params
from toolkit.errors import ConfigError, ServiceError
from toolkit.evals.judge import cohen_kappa, combine, parse_verdict, run_judge, win_rate
from toolkit.files import read_jsonl

REPO = Path(__file__).resolve().parents[2]


def test_verdicts_in_both_orders_and_win_rate(judge_project):
    with AnthropicStub() as stub:
        params = judge_project(stub, _items(10))
        report = run_judge(params)
        assert (report.wins, report.ties, report.losses, report.invalid) == (10, 0, 0, 0)
        assert stub.state.requests == 20 and report.usage["requests"] == 20  # each item in both orders
        assert report.win_rate.point == 1.0 and report.position_consistency == 1.0
        assert report.usage["input_tokens"] > 0 and report.usage["output_tokens"] == 400
        # priced for FinOps at the catalog's claude-sonnet-4-5 price: 3 / 15 USD per million tokens
        assert report.usage["cost"] == pytest.approx((report.usage["input_tokens"] * 3 + 400 * 15) / 1e6)
        rows = list(read_jsonl("artifacts/eval/judge_items.jsonl"))
        assert rows[0]["adapter_first"]["winner"] == "A" and rows[0]["base_first"]["winner"] == "B"


def test_a_position_biased_judge_gives_ties_and_low_consistency(judge_project):
    with AnthropicStub() as stub:
        stub.state.always_a = True
        report = run_judge(judge_project(stub, _items(6)))
        assert (report.wins, report.ties, report.losses) == (0, 6, 0)
        assert report.position_consistency == 0.0 and report.win_rate.point == 0.5


def test_rate_limited_then_success(judge_project):
    with AnthropicStub() as stub:
        stub.state.rate_limited = 2  # the first request is refused twice, then answered (max_retries 2)
        report = run_judge(judge_project(stub, _items(5), concurrency=1))
        assert report.wins == 5 and stub.state.requests == 10 + 2 and report.usage["requests"] == 10


def test_server_errors_until_giving_up_keep_completed_verdicts(judge_project):
    with AnthropicStub() as stub:
        stub.state.fail_words = {"FAILING"}
        params = judge_project(stub, _items(6, special={2: "FAILING"}))
        with pytest.raises(ServiceError) as error:
            run_judge(params)
        message = str(error.value)
        assert "2 of 12 request(s) failed after 2 retries" in message and "InternalServerError" in message
        assert "10 verdict(s) received are cached in .cache/judge" in message and error.value.exit_code == 3
        assert len(list(Path(".cache/judge").glob("*.json"))) == 10
        stub.state.fail_words = set()
        before = stub.state.requests
        report = run_judge(params)
        assert stub.state.requests - before == 2 and report.usage["cache_hits"] == 10 and report.wins == 6


def test_malformed_replies_are_retried_once_then_invalid(judge_project):
    with AnthropicStub() as stub:
        stub.state.malformed_words = {"GARBLED"}
        stub.state.malformed_once = True
        report = run_judge(judge_project(stub, _items(3, special={1: "GARBLED"})))
        assert report.invalid == 0 and report.wins == 3 and stub.state.requests == 6 + 2
    with AnthropicStub() as stub:
        stub.state.malformed_words = {"HOPELESS"}
        report = run_judge(judge_project(stub, _items(3, special={1: "HOPELESS"}), cache_dir=".cache/other"))
        assert report.invalid == 1 and report.wins == 2 and stub.state.requests == 4 + 4
        row = list(read_jsonl("artifacts/eval/judge_items.jsonl"))[1]
        assert row["outcome"] == "invalid" and row["adapter_first"]["winner"] == "invalid"


def test_a_cache_hit_makes_zero_requests_and_the_key_is_never_written(judge_project, in_tmp):
    with AnthropicStub() as stub:
        params = judge_project(stub, _items(8))
        run_judge(params)
        first = stub.state.requests
        report = run_judge(params)
        assert stub.state.requests == first and report.usage["requests"] == 0 and report.usage["cache_hits"] == 16
        assert report.usage["cost"] == 0.0  # cached verdicts cost nothing
        assert stub.state.api_keys == {KEY}  # the SDK did send it (as a bearer token) ...
    for path in in_tmp.rglob("*"):
        if path.is_file():
            assert KEY not in path.read_text(errors="replace"), path  # ... and nothing we wrote holds it


def test_without_a_key_the_tier_is_skipped_never_passed(judge_project, monkeypatch):
    with AnthropicStub() as stub:
        params = judge_project(stub, _items(3))
        monkeypatch.delenv("ANTHROPIC_API_KEY")
        report = run_judge(params)
        assert report.skipped and "ANTHROPIC_API_KEY" in report.skip_reason and report.win_rate is None
        assert stub.state.requests == 0
        assert json.loads(Path("reports/eval_judge.json").read_text())["skipped"] is True


def test_human_spotcheck_gives_cohens_kappa(judge_project):
    Path("eval_suites/judge/human_spotcheck.jsonl").write_text(
        "".join(json.dumps({"index": i, "verdict": v}) + "\n" for i, v in enumerate(["adapter", "adapter", "tie", "base"])))
    with AnthropicStub() as stub:
        report = run_judge(judge_project(stub, _items(4, special={})))
    # judge: adapter x4; human: adapter, adapter, tie, base -> observed 0.5, expected 0.5 -> kappa 0
    assert report.human_agreement_kappa == pytest.approx(cohen_kappa(["adapter"] * 4, ["adapter", "adapter", "tie", "base"]))
    assert report.human_agreement_kappa == pytest.approx(0.0)


def test_verdict_parsing_combination_kappa_and_rubric_errors(in_tmp):
    assert parse_verdict('```json\n{"winner": "B", "reason": "x"}\n```') == {"winner": "B", "reason": "x"}
    assert parse_verdict('{"winner": "C"}') is None and parse_verdict("A is better") is None
    assert combine({"winner": "A"}, {"winner": "B"}) == "adapter"
    assert combine({"winner": "A"}, {"winner": "A"}) == "tie"      # inconsistent -> tie
    assert combine({"winner": "tie"}, {"winner": "invalid"}) == "invalid"
    assert cohen_kappa(["a", "b", "a", "b"], ["a", "b", "a", "b"]) == 1.0
    rate = win_rate(["adapter"] * 6 + ["tie"] * 2 + ["base"] * 2, 2000, 0.95, 1)
    assert rate.point == pytest.approx(0.7) and rate.ci_low < 0.7 < rate.ci_high
    Path("rubric.yaml").write_text("name: x\ninstructions: judge\ncriteria: []\n")
    params = Params.model_validate({"evaluate": {"judge": {"rubric": "rubric.yaml"}}})
    Path("artifacts/eval").mkdir(parents=True)
    Path("artifacts/eval/heldout_items.jsonl").write_text(json.dumps(_items(1)[0]) + "\n")
    with pytest.raises(ConfigError, match="rubric.yaml: criteria: expected a non-empty list"):
        run_judge(params)


def test_message_batches_with_a_malformed_reply_retried_in_a_second_batch(judge_project):
    with AnthropicStub() as stub:
        stub.state.malformed_words = {"GARBLED"}
        stub.state.malformed_once = True
        params = judge_project(stub, _items(5, special={3: "GARBLED"}), use_batches=True, batch_poll_s=0.01)
        report = run_judge(params)
        assert (report.wins, report.invalid) == (5, 0)
        assert [len(b) for b in stub.state.batches.values()] == [10, 2]  # item 3 in both orders, asked again
        assert report.usage["requests"] == 12
        before = len(stub.state.batches)
        assert run_judge(params).usage["cache_hits"] == 10 and len(stub.state.batches) == before  # all cached
