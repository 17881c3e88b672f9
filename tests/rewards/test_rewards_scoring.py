import math

import pytest

from trl_unified.rewards import score_batch

PROMPTS = ["p0", "bad", "p2"]
REASONING = ["a", "bb", "ccc"]
IMAGES = [None, None, None]


def reasoning_length(prompts, reasoning, images, **columns):
    return [float(len(r)) for r in reasoning]


def target_match(prompts, reasoning, images, target, **columns):
    return [1.0 if r == t else 0.0 for r, t in zip(reasoning, target)]


class CountingReward:
    """Raises on any batch containing the prompt 'bad'; counts calls."""

    name = "fragile"

    def __init__(self):
        self.calls = []

    def __call__(self, prompts, reasoning, images, **columns):
        self.calls.append(list(prompts))
        if "bad" in prompts:
            raise RuntimeError("cannot score bad")
        return [10.0 * len(r) for r in reasoning]


def test_columns_values_and_weighted_combination():
    result = score_batch(
        text_rewards=[reasoning_length, target_match],
        image_rewards=[],
        prompts=PROMPTS,
        reasoning=REASONING,
        images=IMAGES,
        columns={"target": ["a", "xx", "ccc"]},
        text_reward_weights=[0.5, 2.0],
    )
    assert result.rewards["text/reasoning_length"] == [1.0, 2.0, 3.0]
    assert result.rewards["text/target_match"] == [1.0, 0.0, 1.0]
    assert result.text_reward == pytest.approx([0.5 + 2.0, 1.0, 1.5 + 2.0])
    assert result.image_reward == [0.0, 0.0, 0.0]  # no image rewards: empty sum
    assert result.num_failed == 0 and result.reward_errors == [[], [], []]
    assert set(result.columns()) == {
        "text/reasoning_length",
        "text/target_match",
        "text_reward",
        "image_reward",
        "reward_errors",
    }


def test_same_reward_in_both_modalities_and_weight_dict():
    weights = {"reasoning_length": 3.0}
    rewards = [reasoning_length]
    result = score_batch(rewards, rewards, PROMPTS, REASONING, IMAGES, image_reward_weights=weights)
    assert result.rewards["text/reasoning_length"] == result.rewards["image/reasoning_length"]
    assert result.image_reward == [3.0, 6.0, 9.0]


def test_raising_reward_is_retried_per_sample_and_only_bad_sample_fails():
    fragile = CountingReward()
    result = score_batch([reasoning_length], [fragile], PROMPTS, REASONING, IMAGES)
    # one batch call, then one call per sample
    assert fragile.calls == [PROMPTS, ["p0"], ["bad"], ["p2"]]
    values = result.rewards["image/fragile"]
    assert values[0] == 10.0 and values[2] == 30.0 and math.isnan(values[1])
    assert result.image_reward[0] == 10.0 and result.image_reward[2] == 30.0 and math.isnan(result.image_reward[1])
    # the other modality keeps the bad sample's value
    assert result.text_reward == [1.0, 2.0, 3.0]
    assert result.failed == [False, True, False]
    assert result.num_failed == 1
    assert result.failure_counts == {"text/reasoning_length": 0, "image/fragile": 1}
    assert len(result.reward_errors[1]) == 1
    assert result.reward_errors[1][0].startswith("image/fragile: raised RuntimeError")
    assert "cannot score bad" in result.batch_errors["image/fragile"]


def test_per_sample_retry_gets_aligned_columns():
    def strict(prompts, reasoning, images, target, **columns):
        if len(prompts) > 1:
            raise RuntimeError("batch too big")
        return [1.0 if reasoning[0] == target[0] else -1.0]

    result = score_batch([strict], [], PROMPTS, REASONING, IMAGES, columns={"target": ["a", "no", "ccc"]})
    assert result.rewards["text/strict"] == [1.0, -1.0, 1.0]
    assert result.num_failed == 0
    assert "text/strict" in result.batch_errors


def test_successful_reward_is_called_once():
    fragile = CountingReward()
    score_batch([fragile], [], ["x", "y"], ["a", "b"], [None, None])
    assert len(fragile.calls) == 1


@pytest.mark.parametrize("bad_value", [math.nan, math.inf, None, "high"])
def test_bad_value_for_one_sample_is_marked_and_counted(bad_value):
    def flaky(prompts, reasoning, images, **columns):
        return [bad_value if p == "bad" else 1.0 for p in prompts]

    result = score_batch([flaky, reasoning_length], [], PROMPTS, REASONING, IMAGES)
    assert result.rewards["text/flaky"][0] == 1.0 and result.rewards["text/flaky"][2] == 1.0
    assert math.isnan(result.rewards["text/flaky"][1])
    assert result.text_reward[0] == 2.0 and result.text_reward[2] == 4.0
    assert math.isnan(result.text_reward[1])
    assert result.failed == [False, True, False]
    assert result.failure_counts["text/flaky"] == 1
    assert result.failure_counts["text/reasoning_length"] == 0
    assert result.reward_errors[1][0].startswith("text/flaky: returned")


def test_optional_reward_none_means_not_applicable():
    def only_some(prompts, reasoning, images, **columns):
        return [None if p == "bad" else 5.0 for p in prompts]

    only_some.optional = True
    result = score_batch([only_some, reasoning_length], [], PROMPTS, REASONING, IMAGES)
    assert result.rewards["text/only_some"] == [5.0, None, 5.0]
    assert result.text_reward == [6.0, 2.0, 8.0]
    assert result.num_failed == 0


def test_wrong_length_output_raises_naming_the_reward():
    def short(prompts, reasoning, images, **columns):
        return [1.0]

    with pytest.raises(ValueError, match="'image/short' returned 1 values for a batch of 3"):
        score_batch([], [short], PROMPTS, REASONING, IMAGES)

    def scalar(prompts, reasoning, images, **columns):
        return 1.0

    with pytest.raises(ValueError, match="text/scalar"):
        score_batch([scalar], [], PROMPTS, REASONING, IMAGES)


def test_wrong_length_in_per_sample_retry_raises():
    def broken(prompts, reasoning, images, **columns):
        if len(prompts) > 1:
            raise RuntimeError("no batches")
        return []

    with pytest.raises(ValueError, match="text/broken"):
        score_batch([broken], [], PROMPTS, REASONING, IMAGES)


def test_input_validation():
    with pytest.raises(ValueError, match="same length"):
        score_batch([reasoning_length], [], PROMPTS, REASONING[:2], IMAGES)
    with pytest.raises(ValueError, match="column 'target'"):
        score_batch([reasoning_length], [], PROMPTS, REASONING, IMAGES, columns={"target": [1]})
    with pytest.raises(ValueError, match="reserved"):
        score_batch([reasoning_length], [], PROMPTS, REASONING, IMAGES, columns={"images": [1, 2, 3]})


def test_summary_means_over_finite_values_and_failure_counts():
    def flaky(prompts, reasoning, images, **columns):
        return [math.nan if p == "bad" else 4.0 for p in prompts]

    result = score_batch([reasoning_length], [flaky], PROMPTS, REASONING, IMAGES)
    summary = result.summary()
    assert summary["num_samples"] == 3.0
    assert summary["num_failed"] == 1.0
    assert summary["text/reasoning_length/mean"] == pytest.approx(2.0)
    assert summary["image/flaky/mean"] == pytest.approx(4.0)
    assert summary["image/flaky/num_failed"] == 1.0
    assert summary["text/reasoning_length/num_failed"] == 0.0
    assert summary["image_reward/mean"] == pytest.approx(4.0)
    assert summary["text_reward/mean"] == pytest.approx(2.0)
