import random

import pytest

from trl_unified.shapes import (
    SHAPES_REWARDS,
    plan_for_prompt,
    render,
    render_image,
    shapes_image_partial_reward,
    shapes_image_reward,
    shapes_text_reward,
)
from trl_unified.shapes.scene import PlacedObject


def test_reward_names():
    assert [f.__name__ for f in SHAPES_REWARDS] == [
        "shapes_text_reward",
        "shapes_image_reward",
        "shapes_image_partial_reward",
    ]


def test_rewards_score_each_sample():
    prompts = ["a red square left of a blue dot", "two green dots", "hello world", "a red square"]
    good_plan, good_scene = plan_for_prompt(prompts[0], random.Random(0))
    wrong_side = [PlacedObject("red", "square", 2, 5), PlacedObject("blue", "dot", 2, 1)]
    reasoning = [good_plan, "no plan here", good_plan, None]
    images = [render_image(good_scene), render_image(wrong_side), render_image(good_scene), None]
    assert shapes_text_reward(prompts, reasoning, images) == [1.0, 0.0, None, None]
    assert shapes_image_reward(prompts, reasoning, images) == [1.0, 0.0, None, None]
    partial = shapes_image_partial_reward(prompts, reasoning, images)
    assert partial[0] == 1.0 and partial[2] is None and partial[3] is None
    assert partial[1] == pytest.approx(0.0)  # two_green_dots vs red square + blue dot: 0 / (2 + 2)


def test_image_rewards_accept_codes_and_chat_prompts():
    scene = [PlacedObject("red", "square", 2, 5), PlacedObject("blue", "dot", 2, 1)]
    prompts = [
        [{"role": "user", "content": "a red square left of a blue dot"}],
        [
            {"role": "system", "content": "draw"},
            {"role": "user", "content": [{"type": "text", "text": "a blue dot left of a red square"}]},
        ],
    ]
    assert shapes_image_reward(prompts, None, [render(scene), render(scene)]) == [0.0, 1.0]
    assert shapes_image_partial_reward(prompts, None, [render(scene), render(scene)]) == pytest.approx([2 / 3, 1.0])


def test_reward_length_mismatch_raises():
    with pytest.raises(ValueError, match="prompts"):
        shapes_text_reward(["a red dot"], ["plan : red dot at row 0 col 0 .", "x"], [None])
