"""The study on the shapes world: :func:`shapes_study_world`, the :class:`~trl_unified.study.StudyWorld` that
`trl-unified ablate` runs on (the demo's evaluation prompts, rewards and training settings)."""

from __future__ import annotations

from ..evaluation import load_prompt_set
from ..study import StudyConfig, StudyWorld
from .demo import METRIC, TEXT_REWARDS, TRAINING, TRAINING_IMAGE_REWARDS, default_eval_prompts, read_prompts
from .model import load_shapes_model
from .prompt_source import ShapesPromptSource, shapes_category
from .prompts import all_prompt_specs, is_held_out
from .rewards import shapes_image_reward


def shapes_study_world(config: StudyConfig) -> StudyWorld:
    """The shapes world with ``config``'s base model and evaluation prompts. Its broad pool is uniform over the
    grammar's training prompts, so each category's share is its number of prompts (``position`` has most)."""
    if config.eval_prompts:
        eval_set = read_prompts(config.eval_prompts)
    else:
        eval_set = load_prompt_set(default_eval_prompts(config.eval_prompts_per_category), categorize=shapes_category)
    categories = list(dict.fromkeys(eval_set.categories))
    return StudyWorld(
        name="shapes world",
        load_model=lambda: load_shapes_model(config.base_model),
        eval_set=eval_set,
        source=ShapesPromptSource(),
        text_rewards=TEXT_REWARDS,
        image_rewards=TRAINING_IMAGE_REWARDS,
        eval_image_rewards=(shapes_image_reward,),
        metric=METRIC,
        broad_shares={c: sum(not is_held_out(s) for s in all_prompt_specs(c)) for c in categories},
        training=dict(TRAINING),
    )


__all__ = ["shapes_study_world"]
