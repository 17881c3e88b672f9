"""Shapes-world reward functions in the trl-unified reward protocol.

A reward is `f(prompts, reasoning, images, **columns) -> list[float | None]`, one value per sample, None meaning
"not applicable" (a prompt outside the shapes grammar, or no text / no image to judge), so shapes rewards can be
mixed with other rewards over mixed datasets without scoring what they cannot judge.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..rewards.base import score_present
from .prompts import PromptSpec, parse_prompt
from .reasoning import plan_score
from .verify import verify


def _prompt_spec(prompt) -> PromptSpec | None:
    """The spec of a prompt given as text, a spec, or chat messages (last user turn); None if not a shapes prompt."""
    if isinstance(prompt, PromptSpec):
        return prompt
    if isinstance(prompt, list):
        texts = [m.get("content") for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        if not texts:
            return None
        prompt = texts[-1]
        if isinstance(prompt, list):  # content parts: keep the text ones
            prompt = " ".join(p.get("text", "") for p in prompt if isinstance(p, dict) and p.get("type") == "text")
    if not isinstance(prompt, str):
        return None
    try:
        return parse_prompt(prompt)
    except ValueError:
        return None


def _per_sample(prompts: Sequence, outputs: Sequence, score: Callable) -> list[float | None]:
    if len(prompts) != len(outputs):
        raise ValueError(f"got {len(prompts)} prompts but {len(outputs)} outputs")
    specs = [_prompt_spec(prompt) for prompt in prompts]
    items = [None if spec is None or output is None else (spec, output) for spec, output in zip(specs, outputs)]
    return score_present(items, lambda present: [score(spec, output) for spec, output in present])


def shapes_text_reward(prompts, reasoning, images=None, **columns) -> list[float | None]:
    """`plan_score` of each reasoning text against its prompt."""
    reasoning = [None] * len(prompts) if reasoning is None else reasoning
    return _per_sample(prompts, reasoning, plan_score)


def shapes_image_reward(prompts, reasoning=None, images=None, **columns) -> list[float | None]:
    """1.0 if the image is correct for its prompt (exact verdict), else 0.0."""
    images = [None] * len(prompts) if images is None else images
    return _per_sample(prompts, images, lambda spec, image: 1.0 if verify(spec, image).correct else 0.0)


def shapes_image_partial_reward(prompts, reasoning=None, images=None, **columns) -> list[float | None]:
    """The verdict's `partial_credit` of each image, in [0, 1] (1.0 exactly when correct)."""
    images = [None] * len(prompts) if images is None else images
    return _per_sample(prompts, images, lambda spec, image: verify(spec, image).partial_credit)


SHAPES_REWARDS = (shapes_text_reward, shapes_image_reward, shapes_image_partial_reward)
