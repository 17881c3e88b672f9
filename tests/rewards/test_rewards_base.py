import functools
import math

import pytest

from trl_unified.rewards import RewardSpec, combine_rewards, make_specs, reward_name


def length_reward(prompts, reasoning, images, **columns):
    return [float(len(r)) for r in reasoning]


class Named:
    name = "custom_name"

    def __call__(self, prompts, reasoning, images, **columns):
        return [0.0] * len(prompts)


class Unnamed:
    def __call__(self, prompts, reasoning, images, **columns):
        return [0.0] * len(prompts)


def test_reward_name_prefers_name_attribute_then_dunder_name():
    assert reward_name(length_reward) == "length_reward"
    assert reward_name(Named()) == "custom_name"
    fn = lambda p, r, i: []  # noqa: E731
    fn.name = "lam"
    assert reward_name(fn) == "lam"
    assert reward_name(functools.partial(length_reward)) == "length_reward"
    assert reward_name(Unnamed()) == "Unnamed"


def test_reward_spec_defaults_and_validation():
    spec = RewardSpec(length_reward)
    assert (spec.name, spec.weight, spec.optional) == ("length_reward", 1.0, False)
    with pytest.raises(TypeError):
        RewardSpec("not callable")
    with pytest.raises(ValueError, match="finite"):
        RewardSpec(length_reward, weight=math.inf)


def test_make_specs_weights_list_dict_and_errors():
    other = Named()
    other.optional = True
    specs = make_specs([length_reward, other], [0.5, 2.0])
    assert [(s.name, s.weight, s.optional) for s in specs] == [
        ("length_reward", 0.5, False),
        ("custom_name", 2.0, True),
    ]
    specs = make_specs([length_reward, other], {"custom_name": 3.0})
    assert [s.weight for s in specs] == [1.0, 3.0]
    assert [s.weight for s in make_specs([length_reward], None)] == [1.0]
    with pytest.raises(ValueError, match="1 weights for 2 rewards"):
        make_specs([length_reward, other], [1.0])
    with pytest.raises(ValueError, match="unknown rewards"):
        make_specs([length_reward], {"nope": 1.0})
    with pytest.raises(ValueError, match="unique"):
        make_specs([length_reward, length_reward])


def test_combine_rewards_weighted_sum():
    combined = combine_rewards([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]], [0.5, -1.0])
    assert combined == pytest.approx([0.5 - 10.0, 1.0 - 20.0, 1.5 - 30.0])


def test_combine_rewards_nan_poisons_only_its_sample_and_none_is_skipped():
    combined = combine_rewards([[1.0, math.nan, 3.0], [None, 1.0, math.inf]], [2.0, 1.0])
    assert combined[0] == 2.0  # None: not applicable, left out
    assert math.isnan(combined[1]) and math.isnan(combined[2])


def test_combine_rewards_empty_and_length_errors():
    assert combine_rewards([], [], num_samples=3) == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="num_samples"):
        combine_rewards([], [])
    with pytest.raises(ValueError, match="different lengths"):
        combine_rewards([[1.0], [1.0, 2.0]], [1.0, 1.0])
    with pytest.raises(ValueError, match="weights"):
        combine_rewards([[1.0]], [1.0, 2.0])
