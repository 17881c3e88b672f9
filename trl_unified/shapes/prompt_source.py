"""The shapes grammar as a prompt source for targeted pools: every prompt of a category that is not held out."""

from __future__ import annotations

import random

from ..targeting.sources import sample_or_repeat
from .prompts import CATEGORIES, all_prompt_specs, is_held_out, parse_prompt


def shapes_category(prompt: str) -> str:
    """The category of a shapes prompt (``ValueError`` for a prompt outside the grammar)."""
    return parse_prompt(prompt).category


class ShapesPromptSource:
    """Draws training prompts of the shapes grammar: never held out, never in ``exclude``."""

    categories = CATEGORIES

    def draw(self, category: str, count: int, rng: random.Random, exclude: set[str]) -> list[str]:
        candidates = [s.to_text() for s in all_prompt_specs(category) if not is_held_out(s)]
        return sample_or_repeat([p for p in candidates if p not in exclude], count, rng)


__all__ = ["ShapesPromptSource", "shapes_category"]
