"""What the study needs of a model and a task: :class:`StudyWorld`.

The shapes world builds one (:func:`trl_unified.shapes.study.shapes_study_world`); for your own model, build one with
your loader, a held-out prompt set, a prompt source and your rewards (``docs/study.md``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..evaluation.prompt_sets import PromptSet
from ..targeting.sources import PromptSource


@dataclass
class StudyWorld:
    """A base model and a task to run the study on.

    Args:
        name: shown in the study's tables.
        load_model: returns a fresh ``(model, processing_class)`` of the base model (called once per arm and seed:
            post-training changes the model in place).
        eval_set: the held-out evaluation prompts, with categories; no pool ever draws one of them.
        source: where training prompts come from (:mod:`trl_unified.targeting.sources`).
        text_rewards / image_rewards: score the self-generated training samples (the RWR weights come from them).
        eval_image_rewards: score evaluation samples; ``metric`` names the column that decides the verdict
            (default: ``image_rewards``).
        broad_shares: each category's weight in the *broad* pool, the analogue of an image-caption corpus (normalised
            to shares; default: the source's own mix if it has ``by_category``, else uniform).
        training: extra keyword arguments of :func:`~trl_unified.study.rounds.post_train` (``max_length``,
            ``lora_modules_to_save``, trainer config fields).
    """

    name: str
    load_model: Callable[[], tuple[Any, Any]]
    eval_set: PromptSet
    source: PromptSource
    text_rewards: Sequence[Callable]
    image_rewards: Sequence[Callable]
    eval_image_rewards: Sequence[Callable] | None = None
    metric: str = "image_reward"
    threshold: float = 0.5
    broad_shares: Mapping[str, float] | None = None
    training: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not len(self.eval_set):
            raise ValueError(f"study world {self.name!r}: the evaluation set is empty")
        if self.eval_image_rewards is None:
            self.eval_image_rewards = self.image_rewards
        if self.broad_shares is None:
            by_category = getattr(self.source, "by_category", None)
            counts = {c: len(by_category.get(c, [])) for c in self.categories} if by_category else {}
            self.broad_shares = counts if sum(counts.values()) else dict.fromkeys(self.categories, 1)
        unknown = sorted(set(self.broad_shares) - set(self.categories))
        if unknown:
            raise ValueError(f"broad_shares names categories the evaluation set does not have: {unknown}")
        self.broad_shares = normalised(self.broad_shares)

    @property
    def categories(self) -> list[str]:
        """The evaluation set's categories, in order of first appearance."""
        return list(dict.fromkeys(self.eval_set.categories))

    @property
    def aligned_shares(self) -> dict[str, float]:
        """The evaluation set's category mix: the *benchmark-aligned* pool draws like the benchmark."""
        return normalised(Counter(self.eval_set.categories))


def normalised(weights: Mapping[str, float]) -> dict[str, float]:
    """``weights`` scaled to sum to one (they must be >= 0 with a positive sum)."""
    if any(w < 0 for w in weights.values()) or not sum(weights.values()) > 0:
        raise ValueError(f"shares must be >= 0 with a positive sum, got {dict(weights)}")
    total = sum(weights.values())
    return {c: w / total for c, w in weights.items()}


__all__ = ["StudyWorld", "normalised"]
