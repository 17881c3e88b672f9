import functools

import pytest
import torch

from trl_unified.rewards import DEFAULT_JUDGE_TEMPLATE, ReasoningFaithfulnessReward

PROMPTS = ["a red circle", "two blue squares left of a green triangle", "draw"]
REASONING = ["first draw a red circle", "two", "then draw three green squares above the circle"]


@functools.cache
def load(path):
    from transformers import AutoTokenizer, LlamaForCausalLM

    return LlamaForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def hand_probs(path, text):
    """Independent read-out: one unpadded text through the judge, softmax of the last logits."""
    model, tokenizer = load(path)
    inputs = tokenizer([text], return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        probs = model(**inputs).logits[0, -1].softmax(-1)
    vocab = tokenizer.get_vocab()
    return probs, vocab["Yes"], vocab["No"]


def chat_text(prompt, reasoning):
    return "USER: " + DEFAULT_JUDGE_TEMPLATE.format(prompt=prompt, reasoning=reasoning) + " ASSISTANT:"


@pytest.fixture(scope="module")
def judge(judge_dir):
    return ReasoningFaithfulnessReward(judge_dir, device="cpu")


def test_judge_matches_hand_yes_probability(judge, judge_dir):
    assert judge.build_text(PROMPTS[0], REASONING[0]) == chat_text(PROMPTS[0], REASONING[0])
    scores = judge(PROMPTS, REASONING, [None, None, None])
    assert len(scores) == 3 and all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in scores)
    expected = []
    for prompt, reasoning in zip(PROMPTS, REASONING):
        probs, yes, _ = hand_probs(judge_dir, chat_text(prompt, reasoning))
        expected.append(float(probs[yes]))
    # batched with left padding (reasonings differ in length) == unpadded per-sample
    assert scores == pytest.approx(expected, rel=1e-4, abs=1e-7)
    assert len({round(s, 8) for s in scores}) == 3


def test_judge_normalized_plain_prompt_and_instances(judge, judge_dir):
    reward = ReasoningFaithfulnessReward(
        model=judge.model,
        tokenizer=judge.tokenizer,
        template="{prompt} | {reasoning}",
        normalize=True,
        use_chat_template=False,
        batch_size=2,
    )
    assert reward.build_text("a", "b") == "a | b\nAnswer:"
    scores = reward(PROMPTS, REASONING, [None] * 3)
    for prompt, reasoning, score in zip(PROMPTS, REASONING, scores):
        probs, yes, no = hand_probs(judge_dir, f"{prompt} | {reasoning}\nAnswer:")
        assert score == pytest.approx(float(probs[yes] / (probs[yes] + probs[no])), rel=1e-4)


def test_missing_reasoning_is_not_applicable(judge):
    scores = judge(PROMPTS, [None, REASONING[1], None], [None] * 3)
    assert scores[0] is None and scores[2] is None
    assert scores[1] == pytest.approx(judge(PROMPTS[1:2], REASONING[1:2], [None])[0], rel=1e-5)
