import functools
import math

import pytest
import torch

from trl_unified.rewards import CLIPScoreReward

PROMPTS = ["a red circle", "two blue squares left of a green triangle", "draw"]


@functools.cache
def load(path):
    from transformers import CLIPModel, CLIPProcessor

    return CLIPModel.from_pretrained(path).eval(), CLIPProcessor.from_pretrained(path)


def hand_cosine(path, prompt, image):
    """Independent CLIP score: projected features from get_*_features, L2-normalised, dot product."""
    model, processor = load(path)
    with torch.no_grad():
        text = model.get_text_features(**processor.tokenizer([prompt], return_tensors="pt")).pooler_output
        pixels = processor.image_processor([image.convert("RGB")], return_tensors="pt")["pixel_values"]
        img = model.get_image_features(pixel_values=pixels).pooler_output
    text = text / text.norm(dim=-1, keepdim=True)
    img = img / img.norm(dim=-1, keepdim=True)
    return float((text * img).sum())


@pytest.fixture(scope="module")
def clip_reward(clip_dir):
    return CLIPScoreReward(clip_dir, device="cpu")


def test_clip_score_matches_hand_computation(clip_reward, clip_dir, images):
    scores = clip_reward(PROMPTS, ["", "", ""], images)
    assert len(scores) == 3
    assert all(isinstance(s, float) and math.isfinite(s) and -1.0 <= s <= 1.0 for s in scores)
    expected = [hand_cosine(clip_dir, p, im) for p, im in zip(PROMPTS, images)]
    assert scores == pytest.approx(expected, abs=1e-5)
    assert len({round(s, 6) for s in scores}) == 3  # the tiny model actually discriminates


def test_clipscore_scale_is_clamped_100x_cosine(clip_reward, images):
    cos = clip_reward(PROMPTS, ["", "", ""], images)
    clipscore = CLIPScoreReward(model=clip_reward.model, processor=clip_reward.processor, scale="clipscore")
    scaled = clipscore(PROMPTS, ["", "", ""], images)
    assert scaled == pytest.approx([max(100 * c, 0.0) for c in cos], abs=1e-3)
    assert all(0.0 <= s <= 100.0 for s in scaled)


def test_missing_image_gets_none_and_batching_does_not_change_scores(clip_reward, images):
    full = clip_reward(PROMPTS, ["", "", ""], images)
    partial = clip_reward(PROMPTS, ["", "", ""], [images[0], None, images[2]])
    assert partial[1] is None
    assert [partial[0], partial[2]] == pytest.approx([full[0], full[2]], abs=1e-6)
    unbatched = CLIPScoreReward(model=clip_reward.model, processor=clip_reward.processor, batch_size=1)
    one_at_a_time = unbatched(PROMPTS, ["", "", ""], images)
    assert one_at_a_time == pytest.approx(full, abs=1e-5)


def test_instances_and_long_prompts(clip_reward, images):
    same = CLIPScoreReward(model=clip_reward.model, processor=clip_reward.processor)
    long_prompt = "a red circle " * 40  # longer than the 64-position text encoder
    scores = same([long_prompt, PROMPTS[0]], ["", ""], images[:2])
    assert all(math.isfinite(s) for s in scores)
    assert scores[1] == pytest.approx(clip_reward([PROMPTS[0]], [""], images[1:2])[0], abs=1e-6)


def test_constructor_errors(clip_dir, clip_reward):
    with pytest.raises(ValueError, match="scale"):
        CLIPScoreReward(clip_dir, scale="percent")
    with pytest.raises(ValueError, match="either"):
        CLIPScoreReward()
    with pytest.raises(ValueError, match="either"):
        CLIPScoreReward(clip_dir, model=clip_reward.model, processor=clip_reward.processor)
