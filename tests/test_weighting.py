import math

import numpy as np
import pytest

from trl_unified.weighting import WeightStats, compute_weights


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
    w = compute_weights(r, scheme="softmax", beta=1.0, groups=[0, 0, 1, 1])
    np.testing.assert_allclose(w, [0.5, 1.5, 1.0, 1.0])


def test_rank_with_ties():
    w = compute_weights([3.0, 1.0, 2.0, 2.0, 9.0], scheme="rank", groups=[0, 0, 0, 0, 1])
    # ranks in group 0: 1.0->0, 2.0,2.0->1.5 each, 3.0->3 ; w = 2*rank/3 ; singleton group -> 1
    np.testing.assert_allclose(w, [2.0, 0.0, 1.0, 1.0, 1.0])


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
    assert (stats.min, stats.max, stats.zero) == (0.0, 2.0, 1)
    assert WeightStats.of(np.ones(5)).ess == pytest.approx(1.0)
