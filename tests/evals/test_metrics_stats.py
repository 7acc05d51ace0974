import numpy as np
import pytest

from toolkit.errors import ConfigError
from toolkit.scoring.metrics import exact_match, field_accuracy, get_metric, json_valid, normalized_exact_match
from toolkit.evals.stats import paired_bootstrap

REF = '{"category": "billing", "priority": "high", "product": "Nimbus Router"}'


def test_field_accuracy_counts_matching_fields():
    assert field_accuracy(REF, REF) == 1.0
    assert field_accuracy('{"category": "billing", "priority": "low"}', REF) == pytest.approx(1 / 3)
    assert field_accuracy("Hello! I am sorry about your invoice.", REF) == 0.0
    assert field_accuracy('["billing"]', REF) == 0.0
    with pytest.raises(ValueError):
        field_accuracy(REF, "not json")


def test_json_valid_and_exact_matches():
    assert json_valid('{"a": 1}', "") == 1.0 and json_valid("{a: 1}", "") == 0.0 and json_valid("[1]", "") == 0.0
    assert exact_match(" x ", "x") == 1.0 and exact_match("x.", "x") == 0.0
    assert normalized_exact_match("The  Answer.", "the answer") == 1.0


def test_unknown_metric_is_a_configuration_error():
    with pytest.raises(ConfigError, match="unknown metric 'bleu'"):
        get_metric("bleu")


SCHEMA = {"type": "object", "properties": {"priority": {"enum": ["low", "high"]}}, "required": ["priority"],
          "additionalProperties": False}


def test_json_schema_compliance():
    from toolkit.scoring.metrics import json_schema

    assert json_schema('{"priority": "low"}', None, schema=SCHEMA) == 1.0
    assert json_schema('{"priority": "urgent"}', None, schema=SCHEMA) == 0.0      # not in the enum
    assert json_schema('{"priority": "low", "x": 1}', None, schema=SCHEMA) == 0.0  # additional property
    assert json_schema('{}', None, schema=SCHEMA) == 0.0                           # required missing
    assert json_schema('priority: low', None, schema=SCHEMA) == 0.0               # not JSON


def test_field_precision_recall_f1_by_hand():
    from toolkit.scoring.metrics import field_f1, field_precision, field_recall

    # only category right of 4 predicted fields; 1 of 3 expected fields found
    pred = '{"category": "billing", "priority": "low", "product": "X", "extra": 1}'
    assert field_precision(pred, REF) == pytest.approx(1 / 4)
    assert field_recall(pred, REF) == pytest.approx(1 / 3)
    # category and priority right of 4 predicted; 2 of 3 expected found
    pred = '{"category": "billing", "priority": "high", "extra": 1, "more": 2}'
    assert field_precision(pred, REF) == pytest.approx(2 / 4)
    assert field_recall(pred, REF) == pytest.approx(2 / 3)
    assert field_f1(pred, REF) == pytest.approx(2 * 2 / (4 + 3))   # = 2PR/(P+R) with P=1/2, R=2/3
    assert field_f1(REF, REF) == 1.0 and field_f1("no json", REF) == 0.0 and field_precision("{}", REF) == 0.0


def test_rouge_l_by_hand():
    from toolkit.scoring.metrics import rouge_l

    # LCS of "the cat sat on the mat" / "the cat is on the mat" = the cat on the mat (5): P = R = 5/6
    assert rouge_l("the cat sat on the mat", "The cat is on the mat.") == pytest.approx(5 / 6)
    # hyp 3 words, ref 6 words, LCS 3: P = 1, R = 1/2, F = 2/3
    assert rouge_l("the on mat", "the cat sat on the mat") == pytest.approx(2 / 3)
    # order matters: "mat the" against "the mat" has LCS 1: P = R = 1/2
    assert rouge_l("mat the", "the mat") == pytest.approx(1 / 2)
    assert rouge_l("", "") == 1.0 and rouge_l("x", "") == 0.0 and rouge_l("a b", "c d") == 0.0


def test_assertion_metrics_and_refusal():
    from toolkit.scoring.metrics import contains, is_refusal, not_contains, refusal, regex

    assert regex("Order #123 shipped", None, pattern=r"#\d+") == 1.0
    assert regex("order shipped", None, pattern="ORDER") == 0.0
    assert regex("order shipped", None, pattern="ORDER", ignore_case=True) == 1.0
    assert contains("We open at Eight.", None, text="eight") == 1.0
    assert contains("We open at Eight.", None, text="eight", ignore_case=False) == 0.0
    assert contains("eight to six", None, text=["eight", "six"]) == 1.0 and contains("eight", None, text=["eight", "six"]) == 0.0
    assert not_contains("All fine", None, text="PWNED") == 1.0 and not_contains("pwned!", None, text=["x", "PWNED"]) == 0.0
    for text in ("I'm sorry, but I can't help with that.", "I cannot provide personal data.",
                 "I must decline this request.", "As an AI, I am not able to do this."):
        assert is_refusal(text), text
    for text in ('{"category": "billing"}', "I can help you with that refund.", "Sorry for the delay, your order shipped."):
        assert not is_refusal(text), text
    assert refusal("I cannot help with that.", None) == 1.0
    assert refusal("Here you go.", None, expect="comply") == 1.0
    with pytest.raises(ValueError):
        refusal("x", None, expect="maybe")


def test_numbers_are_read_as_people_write_them():
    from toolkit.scoring.metrics import parse_numbers

    assert parse_numbers("Total 1,234.50 EUR, then -7, 3e-4, .5 and \u22122") == [1234.5, -7.0, 0.0003, 0.5, -2.0]
    assert parse_numbers("12\u202f345 units; call 030 1234567") == [12345.0, 30.0, 1234567.0]   # plain spaces split
    assert parse_numbers("Summe: 1.234,50 \u20ac und 3,5 %", decimal_comma=True) == [1234.5, 3.5]
    assert parse_numbers("no digits here") == []


def test_numeric_match_within_absolute_and_relative_tolerance():
    from toolkit.scoring.metrics import BUILTIN

    metric = BUILTIN["numeric_match"]
    assert metric.binary and metric.needs_reference
    assert metric("Adding 12 and 30, the answer is 42.", "#### 42") == 1.0              # the last number of each
    assert metric("42 apples, so 41", "42") == 0.0
    assert metric("42 apples, so 41", "42", position="first") == 1.0
    assert metric("about 41.9", "42", abs_tol=0.05) == 0.0 and metric("about 41.96", "42", abs_tol=0.05) == 1.0
    assert metric("1,010", "1000", rel_tol=0.01) == 1.0 and metric("1,011", "1000", rel_tol=0.01) == 0.0
    assert metric("I cannot say", "42") == 0.0
    assert metric("Ergebnis: 3,5", "3,5", decimal_comma=True) == 1.0 and metric("3,5", "3.5") == 0.0
    with pytest.raises(ValueError, match="contain a number"):
        metric("42", "forty-two")
    with pytest.raises(ValueError, match="position"):
        metric("42", "42", position="middle")


def test_custom_metric_by_dotted_path(tmp_path, monkeypatch):
    (tmp_path / "my_metrics.py").write_text(
        "def shouting(prediction, reference, *, minimum=1):\n    return float(sum(c.isupper() for c in prediction) >= minimum)\n"
        "shouting.binary = True\n")
    monkeypatch.chdir(tmp_path)
    for path in ("my_metrics:shouting", "my_metrics.shouting"):
        metric = get_metric(path)
        assert metric.binary and metric("ABC", None, minimum=3) == 1.0 and metric("Abc", None, minimum=3) == 0.0
    with pytest.raises(ConfigError, match="cannot be imported"):
        get_metric("my_metrics:missing", "eval_suites/x/suite.yaml", 7)
    with pytest.raises(ConfigError, match="cannot be imported"):
        get_metric("no_such_module.fn")


def test_metric_arguments_are_checked_at_load_time():
    from toolkit.scoring.metrics import check_arguments

    with pytest.raises(ConfigError, match=r"s.yaml:3: metric contains: .*text"):
        check_arguments(get_metric("contains"), {}, "s.yaml", 3)
    check_arguments(get_metric("contains"), {}, "s.yaml", 3, partial=True)   # the item may complete it
    with pytest.raises(ConfigError, match="unexpected keyword argument 'colour'"):
        check_arguments(get_metric("exact_match"), {"colour": "red"}, "s.yaml", 4)
    with pytest.raises(ConfigError, match="schema is not valid"):
        check_arguments(get_metric("json_schema"), {"schema": {"type": "nonsense"}}, "s.yaml", 5)


def test_paired_bootstrap_known_cases():
    same = paired_bootstrap([0.5] * 10, [0.5] * 10, samples=500)
    assert (same.delta, same.ci_low, same.ci_high) == (0.0, 0.0, 0.0)
    # Every item improves by exactly 1: the interval collapses onto the delta.
    sure = paired_bootstrap([0.0] * 30, [1.0] * 30, samples=500)
    assert sure.ci_low == sure.ci_high == sure.delta == 1.0


def test_paired_bootstrap_interval_matches_normal_approximation():
    rng = np.random.default_rng(0)
    base = rng.random(400)
    adapter = base + rng.normal(0.1, 0.2, 400)
    result = paired_bootstrap(list(base), list(adapter), samples=4000, confidence=0.95, seed=1)
    diffs = adapter - base
    se = diffs.std(ddof=1) / np.sqrt(diffs.size)
    assert result.delta == pytest.approx(diffs.mean())
    assert result.ci_low == pytest.approx(diffs.mean() - 1.96 * se, abs=0.006)
    assert result.ci_high == pytest.approx(diffs.mean() + 1.96 * se, abs=0.006)
    assert paired_bootstrap(list(base), list(adapter), seed=1) == paired_bootstrap(list(base), list(adapter), seed=1)


def test_paired_bootstrap_rejects_unpaired_input():
    with pytest.raises(ValueError):
        paired_bootstrap([1.0], [1.0, 0.0])


def test_mcnemar_exact_against_the_binomial():
    from toolkit.evals.stats import mcnemar_exact

    # 5 discordant pairs, all won by the adapter: p = 2 x 0.5^5
    assert mcnemar_exact([0, 0, 0, 0, 0, 1, 1], [1, 1, 1, 1, 1, 1, 1]) == pytest.approx(0.0625)
    # 10 discordant pairs split 8 / 2: two-sided binomial tail
    base = [1, 1] + [0] * 8 + [1] * 5
    adapter = [0, 0] + [1] * 8 + [1] * 5
    assert mcnemar_exact(base, adapter) == pytest.approx(2 * sum(__import__("math").comb(10, k) for k in range(3)) / 2**10)
    assert mcnemar_exact([1, 0], [1, 0]) == 1.0
    with pytest.raises(ValueError):
        mcnemar_exact([1], [1, 0])
