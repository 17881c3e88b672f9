"""Intervals against published values (Wilson; Newcombe 1998, method 10) and the t table."""

import math

import pytest

from trl_unified.evaluation.intervals import (
    difference_interval,
    score_interval,
    t_interval,
    t_quantile,
    wilson_interval,
)


@pytest.mark.parametrize("df, expected", [(1, 12.706), (2, 4.303), (3, 3.182), (5, 2.571), (10, 2.228), (30, 2.042)])
def test_t_quantile_matches_the_table(df, expected):
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-3)


def test_wilson_interval_known_values_and_edges():
    # Newcombe (1998), Table I: 81/263 -> 0.2553 to 0.3662; 15/148 -> 0.0624 to 0.1605
    w = wilson_interval(81, 263)
    assert (w.low, w.high) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    w = wilson_interval(15, 148)
    assert (w.low, w.high) == pytest.approx((0.0624, 0.1605), abs=1e-4)
    zero, full = wilson_interval(0, 10), wilson_interval(10, 10)
    assert zero.low == 0 and 0.2 < zero.high < 0.35 and full.high == 1 and 0.65 < full.low < 0.8
    assert math.isnan(wilson_interval(0, 0).estimate)
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(11, 10)


def test_newcombe_difference_of_proportions():
    # Newcombe (1998), Table II example (a): 56/70 - 48/80, method 10: 0.0524 to 0.3339
    a = [1.0] * 48 + [0.0] * 32
    b = [1.0] * 56 + [0.0] * 14
    d = difference_interval(a, b)
    assert d.method == "newcombe" and d.estimate == pytest.approx(0.2)
    assert (d.low, d.high) == pytest.approx((0.0524, 0.3339), abs=1e-4)
    assert d.excludes_zero()
    same = difference_interval([1.0, 0.0] * 5, [0.0, 1.0] * 5)
    assert same.estimate == 0 and not same.excludes_zero()


def test_continuous_scores_use_t_and_welch():
    values = [0.2, 0.4, 0.6, 0.8]
    t = t_interval(values)
    half = 3.182446 * math.sqrt(sum((v - 0.5) ** 2 for v in values) / 3 / 4)
    assert (t.low, t.high) == pytest.approx((0.5 - half, 0.5 + half), abs=1e-5)
    assert score_interval(values).method == "t" and score_interval([1, 0, 1]).method == "wilson"
    a, b = [0.1, 0.2, 0.3], [0.5, 0.7, 0.9, 0.7]
    d = difference_interval(a, b)
    assert d.method == "welch" and d.estimate == pytest.approx(0.7 - 0.2)
    assert d.low < d.estimate < d.high and d.excludes_zero()
