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
    small_drop = analysis.metric_figure("json_valid", "d", [1.0] * 930 + [0.0] * 70, 0.97, 174, **judge)
    assert small_drop.status == "ok"                       # 0.93 vs 0.97: 4 points, under the policy's 5
    big_drop = analysis.metric_figure("json_valid", "d", [1.0] * 880 + [0.0] * 120, 0.97, 174, **judge)
    assert big_drop.status == "failed" and "significant drop" in big_drop.message
    noisy = analysis.metric_figure("json_valid", "d", [1.0] * 36 + [0.0] * 4, 0.97, 174, **judge)
    assert noisy.status == "ok"                            # 0.90 on 40 records: not significant
    few = analysis.metric_figure("json_valid", "d", [0.0] * 10, 0.97, 174, **judge)
    assert few.status == "too_few" and few.value == 0.0


def test_feedback_fails_when_the_whole_interval_is_above_the_threshold():
    common = {"confidence": 0.95, "min_records": 30}
    assert analysis.rate_figure("feedback", "rerouted", "d", [True] * 14 + [False] * 86, 0.10, **common).status == "ok"
    assert analysis.rate_figure("feedback", "rerouted", "d", [True] * 25 + [False] * 75, 0.10, **common).status == "failed"


def test_negative_feedback_reads_ratings_and_thumbs_and_skips_records_without_any():
    from toolkit.monitoring.logs import LogRecord

    def record(feedback):
        return LogRecord("f", 1, dt.datetime.now(dt.timezone.utc), "1", [], "", feedback=feedback)

    records = [record({"rating": 1}), record({"rating": 5}), record({"thumbs": "down"}), record({}),
               record({"rerouted": True})]
    assert analysis.feedback_flags(records, "negative") == [True, False, True]
    assert analysis.feedback_flags(records, "rerouted") == [True]
