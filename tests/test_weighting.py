import math

import numpy as np
import pytest

from trl_unified.weighting import WeightStats, compute_weights, count_constant_groups


def test_exp_weights_match_hand_computation_and_average_one():
    r = [0.0, 1.0, 2.0, 3.0]
    w = compute_weights(r, scheme="exp", beta=0.5, normalization="mean")
    raw = np.exp(np.array(r) / 0.5)
    np.testing.assert_allclose(w, raw / raw.mean())
    assert w.mean() == pytest.approx(1.0)


def test_exp_group_normalisation_averages_one_per_group():
    r = [0.0, 1.0, 10.0, 12.0]
    w = compute_weights(r, scheme="exp", beta=1.0, groups=["a", "a", "b", "b"], normalization="group")
    assert w[:2].mean() == pytest.approx(1.0) and w[2:].mean() == pytest.approx(1.0)
    e = math.exp(1.0)
    assert w[1] / w[0] == pytest.approx(e) and w[3] / w[2] == pytest.approx(e**2)


def test_max_weight_clips():
    w = compute_weights([0.0, 0.0, 0.0, 10.0], scheme="exp", beta=1.0, max_weight=2.0)
    assert w.max() == 2.0 and w[0] < 1e-3


def test_softmax_within_group():
    r = [0.0, math.log(3.0), 5.0, 5.0]
    w = compute_weights(r, scheme="softmax", beta=1.0, groups=[0, 0, 1, 1], keep_constant_groups=True)
    np.testing.assert_allclose(w, [0.5, 1.5, 1.0, 1.0])
    # by default the constant group 1 (no contrast) gets no weight
    np.testing.assert_allclose(compute_weights(r, scheme="softmax", beta=1.0, groups=[0, 0, 1, 1]), [0.5, 1.5, 0, 0])


def test_rank_with_ties():
    w = compute_weights([3.0, 1.0, 2.0, 2.0, 9.0], scheme="rank", groups=[0, 0, 0, 0, 1], keep_constant_groups=True)
    # ranks in group 0: 1.0->0, 2.0,2.0->1.5 each, 3.0->3 ; w = 2*rank/3 ; kept singleton group -> 1
    np.testing.assert_allclose(w, [2.0, 0.0, 1.0, 1.0, 1.0])
    # a group of one sample is constant: weight 0 by default
    assert compute_weights([3.0, 1.0, 2.0, 2.0, 9.0], scheme="rank", groups=[0, 0, 0, 0, 1])[4] == 0.0


def test_filter_top_fraction_and_threshold():
    r = [0.1, 0.9, 0.5, 0.2, 0.8, 0.3]
    groups = [0, 0, 0, 1, 1, 1]
    top = compute_weights(r, scheme="filter", groups=groups, filter_top_fraction=0.34)
    np.testing.assert_array_equal(top, [0, 1, 1, 0, 1, 1])  # ceil(0.34*3)=2 per group
    thr = compute_weights(r, scheme="filter", filter_threshold=0.5)
    np.testing.assert_array_equal(thr, [0, 1, 1, 0, 1, 0])
    both = compute_weights(r, scheme="filter", groups=groups, filter_top_fraction=0.34, filter_threshold=0.6)
    np.testing.assert_array_equal(both, [0, 1, 0, 0, 1, 0])


def test_none_is_all_ones_and_bad_arguments_raise():
    np.testing.assert_array_equal(compute_weights([5.0, -3.0], scheme="none"), [1.0, 1.0])
    with pytest.raises(ValueError, match="reward_weighting"):
        compute_weights([1.0], scheme="bogus")
    with pytest.raises(ValueError, match="beta"):
        compute_weights([1.0], scheme="exp", beta=0)
    with pytest.raises(ValueError, match="filter"):
        compute_weights([1.0], scheme="filter")


def test_weight_stats_effective_sample_size():
    stats = WeightStats.of(np.array([1.0, 1.0, 0.0, 2.0]))
    assert stats.ess == pytest.approx(16 / 6 / 4)
    assert (stats.min, stats.max, stats.zero, stats.rows) == (0.0, 2.0, 1, 4)
    assert WeightStats.of(np.ones(5)).ess == pytest.approx(1.0)


# ----- issue #10: weights that cannot silently go wrong ---------------------------------------------------------------


def test_exp_is_computed_in_log_space_and_never_overflows():
    """exp((r - mean)/beta) overflowed to inf (and inf/inf = nan) for [0, 30, 100, 80], beta=0.05."""
    r = np.array([0.0, 30.0, 100.0, 80.0])
    w = compute_weights(r, scheme="exp", beta=0.05, normalization="mean")
    assert np.isfinite(w).all()
    # exact: 4 * softmax(r / beta); the best sample has weight 4 / (1 + e^-400 + ...) = 4 to double precision
    assert w[2] == pytest.approx(4.0) and w.sum() == pytest.approx(4.0)
    assert w[3] == pytest.approx(4 * math.exp(-400.0), rel=1e-9) and w[0] == w[1] == 0.0  # e^-1400 underflows to 0
    np.testing.assert_allclose(w, [0.0, 0.0, 4.0, 7.66e-174], rtol=1e-3)  # the numbers docs/trainer.md quotes
    group = compute_weights(
        [0.0, 900.0, 5.0, 1000.0], scheme="exp", beta=0.01, groups=[0, 0, 1, 1], normalization="group"
    )
    np.testing.assert_allclose(group, [0.0, 2.0, 0.0, 2.0])
    # the same numbers as before wherever the old formula did not overflow
    r = np.array([0.1, 0.7, 0.3, 0.9, 0.2])
    old = np.exp((r - r.mean()) / 0.3)
    np.testing.assert_allclose(compute_weights(r, scheme="exp", beta=0.3), old / old.mean(), rtol=1e-12)


def test_exp_with_group_normalisation_equals_softmax():
    rng = np.random.default_rng(0)
    r, groups = rng.normal(size=12), [i // 4 for i in range(12)]
    exp = compute_weights(r, scheme="exp", beta=0.4, groups=groups, normalization="group")
    np.testing.assert_allclose(exp, compute_weights(r, scheme="softmax", beta=0.4, groups=groups), rtol=1e-12)


@pytest.mark.parametrize(
    "scheme, kwargs",
    [("exp", {"normalization": "group"}), ("softmax", {}), ("rank", {}), ("filter", {"filter_top_fraction": 0.5})],
)
def test_constant_groups_get_no_weight_unless_kept(scheme, kwargs):
    r = [0.0, 0.0, 0.0, 0.0, 0.2, 0.9, 0.1, 0.5]  # group 0: four failures; group 1: contrast
    groups = [0] * 4 + [1] * 4
    w = compute_weights(r, scheme=scheme, beta=0.5, groups=groups, **kwargs)
    assert (w[:4] == 0).all() and w[4:].sum() > 0
    kept = compute_weights(r, scheme=scheme, beta=0.5, groups=groups, keep_constant_groups=True, **kwargs)
    np.testing.assert_array_equal(kept[4:], w[4:])
    np.testing.assert_allclose(kept[:4], [1, 1, 0, 0] if scheme == "filter" else [1, 1, 1, 1])  # filter: first rows
    assert count_constant_groups(r, groups) == (1, 2)


def test_constant_groups_do_not_touch_absolute_weightings():
    r, groups = [0.0, 0.0, 1.0, 0.5], [0, 0, 1, 1]
    threshold_only = compute_weights(r, scheme="filter", groups=groups, filter_threshold=0.0)
    np.testing.assert_array_equal(threshold_only, [1, 1, 1, 1])
    np.testing.assert_allclose(compute_weights(r, scheme="exp", groups=groups, normalization="mean").mean(), 1.0)


def test_filter_ties_at_the_cut_off_go_to_the_earlier_row():
    r = [0.5, 0.9, 0.5, 0.5, 0.1]
    np.testing.assert_array_equal(compute_weights(r, scheme="filter", filter_top_fraction=0.4), [1, 1, 0, 0, 0])
    # reversed order: the earliest of the tied rows is again kept
    np.testing.assert_array_equal(compute_weights(r[::-1], scheme="filter", filter_top_fraction=0.4), [0, 1, 0, 1, 0])


def test_sources_normalise_separately_and_nest_groups():
    # two sources with rewards on different scales; prompt ids repeat across sources but are different prompts
    r = np.array([0.1, 0.3, 0.2, 0.4, 10.0, 30.0, 20.0, 40.0])
    sources = ["a"] * 4 + ["b"] * 4
    groups = [0, 0, 1, 1, 0, 0, 1, 1]
    w = compute_weights(r, scheme="exp", beta=5.0, sources=sources)
    assert w[:4].mean() == pytest.approx(1.0) and w[4:].mean() == pytest.approx(1.0)
    np.testing.assert_allclose(w[:4], compute_weights(r[:4], scheme="exp", beta=5.0), rtol=1e-12)
    # without sources, source a's small rewards would get almost no weight next to source b's
    assert compute_weights(r, scheme="exp", beta=5.0)[:4].max() < 0.01
    top = compute_weights(r, scheme="filter", groups=groups, sources=sources, filter_top_fraction=0.5)
    np.testing.assert_array_equal(top, [0, 1, 0, 1, 0, 1, 0, 1])  # one per (source, prompt) group of 2
    assert count_constant_groups(r, groups, sources) == (0, 4)
