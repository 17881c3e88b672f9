"""Rewards for post-training unified text+image models.

Reward protocol (TRL style)
---------------------------
A reward is any callable::

    reward(prompts: list[str], reasoning: list[str], images: list[PIL.Image.Image | None],
           **columns) -> list[float | None]

``prompts`` are the user requests, ``reasoning`` the text the model wrote (its plan) and
``images`` the images it generated (``None`` where it produced none). ``columns`` carries any
extra dataset columns, as lists aligned with the batch. It returns one float per sample; ``None``
means "not applicable to this sample" (treated as a failure unless the reward sets
``optional = True``, see :class:`RewardSpec`).

A reward's name is its ``name`` attribute if present, else its ``__name__``
(:func:`reward_name`). Text rewards and image rewards are kept in separate lists; each list is
combined with per-reward weights into one modality reward (:func:`combine_rewards`), and
:func:`score_batch` runs both lists on a batch with per-sample failure isolation (see
:mod:`trl_unified.rewards.scoring` for the column names).

Built-in rewards: :class:`CLIPScoreReward` and :class:`VQAScoreReward` (image),
:class:`ReasoningFaithfulnessReward` (text). :func:`load_reward` builds rewards from CLI strings.
"""

from .base import RewardFn, RewardSpec, combine_rewards, make_specs, reward_name
from .clip_score import CLIPScoreReward
from .judge import DEFAULT_JUDGE_TEMPLATE, ReasoningFaithfulnessReward
from .registry import REWARD_REGISTRY, load_reward, register_reward
from .scoring import IMAGE_PREFIX, TEXT_PREFIX, ScoreResult, score_batch
from .vqa_score import DEFAULT_QUESTION, VQAScoreReward

__all__ = [
    "CLIPScoreReward",
    "DEFAULT_JUDGE_TEMPLATE",
    "DEFAULT_QUESTION",
    "IMAGE_PREFIX",
    "REWARD_REGISTRY",
    "ReasoningFaithfulnessReward",
    "RewardFn",
    "RewardSpec",
    "ScoreResult",
    "TEXT_PREFIX",
    "VQAScoreReward",
    "combine_rewards",
    "load_reward",
    "make_specs",
    "register_reward",
    "reward_name",
    "score_batch",
]
