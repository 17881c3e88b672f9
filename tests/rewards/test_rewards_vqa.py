import functools
import math

import pytest
import torch

from trl_unified.rewards import VQAScoreReward

PROMPTS = ["a red circle", "two blue squares left of a green triangle", "draw"]


def question(prompt):
    return f'Does this image show "{prompt}"? Please answer yes or no.'


@functools.cache
def load(path):
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    return LlavaForConditionalGeneration.from_pretrained(path).eval(), AutoProcessor.from_pretrained(path)


def hand_next_token_probs(path, text, image):
    """Independent read-out: one unpadded sample through the model, softmax of the last logits."""
    model, processor = load(path)
    inputs = processor(text=[text], images=[image.convert("RGB")], return_tensors="pt")
    assert (inputs["input_ids"] == model.config.image_token_id).sum() == 4
    with torch.no_grad():
        probs = model(**inputs).logits[0, -1].softmax(-1)
    vocab = processor.tokenizer.get_vocab()
    return probs, vocab["Yes"], vocab["No"]


@pytest.fixture(scope="module")
def vqa_reward(llava_dir):
    return VQAScoreReward(llava_dir, device="cpu")


def test_chat_prompt_text(vqa_reward):
    assert vqa_reward.use_chat_template
    assert vqa_reward.build_text("a red circle") == f"USER: <image>\n{question('a red circle')} ASSISTANT:"


def test_vqa_score_matches_hand_yes_probability(vqa_reward, llava_dir, images):
    scores = vqa_reward(PROMPTS, ["", "", ""], images)
    assert len(scores) == 3
    assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in scores)
    expected = []
    for prompt, image in zip(PROMPTS, images):
        probs, yes, _ = hand_next_token_probs(llava_dir, f"USER: <image>\n{question(prompt)} ASSISTANT:", image)
        expected.append(float(probs[yes]))
    # the batched, left-padded reward must equal the unpadded per-sample computation
    assert scores == pytest.approx(expected, rel=1e-4, abs=1e-7)
    assert len({round(s, 8) for s in scores}) == 3


def test_score_depends_on_the_image(vqa_reward, images):
    same_prompt = [PROMPTS[0]] * 3
    scores = vqa_reward(same_prompt, ["", "", ""], images)
    assert max(scores) - min(scores) > 1e-6


def test_normalized_over_yes_no(llava_dir, images):
    reward = VQAScoreReward(llava_dir, normalize=True, batch_size=2)
    scores = reward(PROMPTS[:2], ["", ""], images[:2])
    for prompt, image, score in zip(PROMPTS, images, scores):
        probs, yes, no = hand_next_token_probs(llava_dir, f"USER: <image>\n{question(prompt)} ASSISTANT:", image)
        assert score == pytest.approx(float(probs[yes] / (probs[yes] + probs[no])), rel=1e-4)
        assert 0.0 < score < 1.0


def test_plain_prompt_without_chat_template(llava_plain_dir, images):
    reward = VQAScoreReward(llava_plain_dir, question_template="Is {prompt} drawn?", answer="No")
    assert not reward.use_chat_template
    assert reward.build_text("a red circle") == "<image>\nIs a red circle drawn?\nAnswer:"
    scores = reward(PROMPTS, ["", "", ""], images)
    for prompt, image, score in zip(PROMPTS, images, scores):
        probs, _, no = hand_next_token_probs(llava_plain_dir, f"<image>\nIs {prompt} drawn?\nAnswer:", image)
        assert score == pytest.approx(float(probs[no]), rel=1e-4)


def test_missing_image_and_errors(vqa_reward, llava_plain_dir, images):
    scores = vqa_reward(PROMPTS, ["", "", ""], [None, images[1], None])
    assert scores[0] is None and scores[2] is None and math.isfinite(scores[1])
    assert vqa_reward(PROMPTS[:1], [""], [None]) == [None]
    with pytest.raises(ValueError, match="unknown token"):
        VQAScoreReward(model=vqa_reward.model, processor=vqa_reward.processor, answer="Absolutely")
    with pytest.raises(ValueError, match="no chat template"):
        VQAScoreReward(llava_plain_dir, use_chat_template=True)
    with pytest.raises(ValueError, match="either"):
        VQAScoreReward(model=vqa_reward.model)
