"""A run's rewards, resolved once: callables given in Python or CLI specs built with :func:`load_reward`, with their
weights, output columns and a description for the run's provenance."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .base import RewardFn, RewardSpec, make_specs
from .scoring import IMAGE_PREFIX, TEXT_PREFIX, ScoreResult, score_batch

_MODEL_REWARD_PREFIXES = ("clip", "vqascore", "judge")  # the `load_reward` forms that take a `device`


@dataclass
class RewardSet:
    """Both modalities' rewards as :func:`score_batch` takes them, their output columns and their description."""

    text: list[RewardSpec]
    image: list[RewardSpec]
    info: dict[str, list[dict[str, Any]]]

    @property
    def columns(self) -> list[str]:
        """The per-reward output columns: ``text/<name>`` then ``image/<name>``."""
        return [TEXT_PREFIX + s.name for s in self.text] + [IMAGE_PREFIX + s.name for s in self.image]

    @property
    def empty(self) -> bool:
        return not self.text and not self.image

    def score(self, prompts, reasoning, images, columns) -> ScoreResult:
        return score_batch(
            [s.fn for s in self.text],
            [s.fn for s in self.image],
            prompts,
            reasoning,
            images,
            columns=columns,
            text_reward_weights=[s.weight for s in self.text],
            image_reward_weights=[s.weight for s in self.image],
        )


def resolve_rewards(
    *,
    text_rewards: Sequence[RewardFn] = (),
    image_rewards: Sequence[RewardFn] = (),
    text_specs: Sequence[str] = (),
    image_specs: Sequence[str] = (),
    text_weights: Sequence[float] | None = None,
    image_weights: Sequence[float] | None = None,
    device: str | None = None,
) -> RewardSet:
    """Rewards of each modality from callables or from ``load_reward`` specs (not both for one modality).

    ``device`` goes to the model-backed rewards (``clip:``, ``vqascore:``, ``judge:``) built from specs.
    """
    given = {"text": (list(text_rewards or []), list(text_specs or []), text_weights),
             "image": (list(image_rewards or []), list(image_specs or []), image_weights)}  # fmt: skip
    resolved, info = {}, {}
    for kind, (fns, specs, weights) in given.items():
        if fns and specs:
            raise ValueError(f"pass {kind} rewards either as callables or as specs (config.{kind}_rewards), not both")
        if specs:
            from .registry import load_reward

            on_device = {"device": device} if device else {}
            fns = [load_reward(s, **(on_device if s.split(":", 1)[0] in _MODEL_REWARD_PREFIXES else {})) for s in specs]
        resolved[kind] = make_specs(fns, None if weights is None else [float(w) for w in weights])
        info[kind] = [
            {"name": s.name, "weight": s.weight, "optional": s.optional, "spec": spec}
            for s, spec in zip(resolved[kind], specs or [None] * len(fns))
        ]
    return RewardSet(resolved["text"], resolved["image"], info)
