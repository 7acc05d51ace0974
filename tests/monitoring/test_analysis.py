"""The monitoring statistics against published values, and the judging rules on their edges."""

import datetime as dt

import pytest

from toolkit.monitoring import analysis


def test_wilson_interval_matches_published_values():
    assert analysis.wilson(0, 10, 0.95) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert analysis.wilson(5, 10, 0.95) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert analysis.wilson(0, 0, 0.95) == (0.0, 1.0)


def test_newcombe_difference_interval_matches_newcombe_1998():
    # Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 - 48/80, method 10
    assert analysis.difference_interval(56, 70, 48, 80, 0.95) == pytest.approx((0.0524, 0.3339), abs=1e-4)


def test_windows_are_utc_days_or_iso_weeks():
    late = dt.datetime(2026, 11, 2, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))   # 04:30 UTC on the 3rd
    assert analysis.window_of(late, "day") == "2026-11-03"
    assert analysis.window_of(late, "week") == "2026-W45"


def test_a_metric_fails_only_on_a_significant_drop_of_at_least_the_policy_size():
    judge = {"confidence": 0.95, "min_records": 30, "max_drop": 0.05}
    small_drop = analysis.metric_figure("json_valid", "d", 930, 1000, 0.97, 174, **judge)
    assert small_drop.status == "ok"                       # 0.93 vs 0.97: 4 points, under the policy's 5
    big_drop = analysis.metric_figure("json_valid", "d", 880, 1000, 0.97, 174, **judge)
    assert big_drop.status == "failed" and "significant drop" in big_drop.message
    noisy = analysis.metric_figure("json_valid", "d", 36, 40, 0.97, 174, **judge)
    assert noisy.status == "ok"                            # 0.90 on 40 records: not significant
    few = analysis.metric_figure("json_valid", "d", 0, 10, 0.97, 174, **judge)
    assert few.status == "too_few" and few.value == 0.0


def test_feedback_fails_when_the_whole_interval_is_above_the_threshold():
    common = {"confidence": 0.95, "min_records": 30}
    assert analysis.rate_figure("feedback", "rerouted", "d", 14, 100, 0.10, **common).status == "ok"
    assert analysis.rate_figure("feedback", "rerouted", "d", 25, 100, 0.10, **common).status == "failed"


def test_negative_feedback_reads_ratings_and_thumbs_and_skips_records_without_any():
    feedbacks = [{"rating": 1}, {"rating": 5}, {"thumbs": "down"}, {}, {"rerouted": True}]
    assert [analysis.feedback(f, "negative") for f in feedbacks] == [
        (True, "rating 1"), (False, "rating 5"), (True, "thumbs down"), None, None]
    assert [analysis.feedback(f, "rerouted") for f in feedbacks] == [None, None, None, None, (True, "feedback rerouted")]


def test_paired_comparison_uses_the_pairs_and_two_samples_otherwise():
    from collections import Counter

    common = {"confidence": 0.95, "min_records": 30, "max_drop": 0.05}
    # 400 requests answered by both: the new release loses 40 that the old one got right, wins none.
    pairs = Counter({(1.0, 1.0): 340, (0.0, 1.0): 40, (0.0, 0.0): 20})
    paired = analysis.comparison_figure("metric", "json_valid", "d", (0, 0), (0, 0), pairs=pairs,
                                        higher_is_worse=False, **common)
    assert paired.paired and paired.status == "failed" and paired.delta == pytest.approx(-0.1)
    assert paired.value == pytest.approx(0.85) and paired.reference == pytest.approx(0.95)
    assert paired.delta_high < 0 and paired.delta_low > -0.14
    # The same shares as two samples of 400: wider, still significant; 2 points worse: not a failure.
    apart = analysis.comparison_figure("metric", "json_valid", "d", (340, 400), (380, 400), pairs=None,
                                       higher_is_worse=False, **common)
    assert not apart.paired and apart.status == "failed" and apart.delta_low < paired.delta_low
    small = analysis.comparison_figure("metric", "json_valid", "d", (372, 400), (380, 400), pairs=None,
                                       higher_is_worse=False, **common)
    assert small.status == "ok"
    worse_feedback = analysis.comparison_figure("feedback", "rerouted", "d", (100, 400), (20, 400), pairs=None,
                                                higher_is_worse=True, **common)
    assert worse_feedback.status == "failed" and worse_feedback.name == "feedback:rerouted"
    few = analysis.comparison_figure("metric", "json_valid", "d", (10, 10), (300, 400), pairs=None,
                                     higher_is_worse=False, **common)
    assert few.status == "too_few"


def test_category_mix_fails_on_a_significant_and_large_shift_only():
    common = {"p_threshold": 0.01, "min_records": 30, "min_distance": 0.10}
    training = {"en": 880, "und": 20}
    same = analysis.category_drift_figure("input_language", "d", {"en": 390, "und": 10}, training, **common)
    assert same.status == "ok" and same.value < 0.02
    german = analysis.category_drift_figure("input_language", "d", {"en": 200, "de": 200}, training, **common)
    assert german.status == "failed" and german.value == pytest.approx(0.5, abs=0.03) and "de 0.50" in german.message
    # Significant on many records but a small shift: not a failure.
    slight = analysis.category_drift_figure("input_language", "d", {"en": 92_000, "de": 8_000}, training, **common)
    assert slight.p_value < 0.01 and slight.status == "ok"


def test_length_drift_from_counts_matches_the_list_form():
    from collections import Counter

    from scipy.stats import ks_2samp

    production = [5, 6, 6, 7, 9, 12] * 10
    training = [5, 5, 6, 7, 7, 8] * 20
    figure = analysis.length_drift_figure("d", Counter(production), Counter(training), p_threshold=0.01,
                                          min_records=30, min_statistic=0.1)
    assert figure.p_value == pytest.approx(ks_2samp(production, training).pvalue)
    assert figure.value == sorted(production)[len(production) // 2]
    # A million records one word longer than 100k training inputs of 5-14 words: significant, and large.
    training = Counter({n: 10_000 for n in range(5, 15)})
    longer = analysis.length_drift_figure("d", Counter({n + 1: 100_000 for n in range(5, 15)}), training,
                                          p_threshold=0.01, min_records=30, min_statistic=0.1)
    assert longer.status == "failed"
    # A sliver of the inputs a word longer: significant on this many records, but too small to act on.
    slightly = Counter({n: 100_000 for n in range(5, 15)})
    slightly[5] -= 30_000
    slightly[15] += 30_000
    small = analysis.length_drift_figure("d", slightly, training, p_threshold=0.01, min_records=30, min_statistic=0.1)
    assert small.p_value < 0.01 and small.status == "ok"


def test_the_training_answer_of_every_layout():
    """The label mix compares answers with what training taught: the last assistant turn of a chat, of a
    conversational completion, or a plain completion."""
    from toolkit.monitoring.reference import training_answer

    chat = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": '{"category": "a"}'}]}
    conversational = {"prompt": [{"role": "user", "content": "q"}],
                      "completion": [{"role": "assistant", "content": '{"category": "b"}'}]}
    plain = {"prompt": "q", "completion": '{"category": "c"}'}
    assert [training_answer(row) for row in (chat, conversational, plain)] == [
        '{"category": "a"}', '{"category": "b"}', '{"category": "c"}']
