import numpy as np
import pytest

from toolkit.errors import ConfigError
from toolkit.evals.metrics import exact_match, field_accuracy, get_metric, json_valid, normalized_exact_match
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
