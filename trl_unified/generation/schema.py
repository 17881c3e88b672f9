"""The columns of a self-generated dataset: their names and their ``datasets`` features (one schema for every shard
and for the assembled dataset). ``docs/self_generation.md`` documents each column."""

from __future__ import annotations

from collections.abc import Sequence

from datasets import Dataset, Features, List, Value
from datasets import Image as ImageFeature

from ..rewards.scoring import IMAGE_PREFIX, TEXT_PREFIX

#: Columns every row has; the reward columns ``text/<name>``/``image/<name>`` come between SAMPLE_ and SCORE_COLUMNS,
#: the prompts source's extra columns last (see ``output_features``).
SAMPLE_COLUMNS = (
    "prompt", "prompt_id", "sample_index", "reasoning", "image", "image_tokens", "prompt_ids", "reasoning_ids"
)  # fmt: skip
SCORE_COLUMNS = ("text_reward", "image_reward", "reward_errors", "reward_failed")
RUN_COLUMNS = ("mode", "switched", "forced_switch", "seed")
RESERVED_COLUMNS = frozenset(SAMPLE_COLUMNS + SCORE_COLUMNS + RUN_COLUMNS + ("prompts", "images"))


def extra_columns(prompts: Dataset) -> list[str]:
    """The prompt table's own columns besides ``prompt``/``prompt_id``: carried into every sample of the prompt."""
    return [c for c in prompts.column_names if c not in ("prompt", "prompt_id")]


def is_reserved(column: str) -> bool:
    """Whether ``column`` is (or looks like) an output column: a prompt column of that name would clash."""
    return column in RESERVED_COLUMNS or column.startswith((TEXT_PREFIX, IMAGE_PREFIX))


def output_features(prompts: Dataset, reward_columns: Sequence[str]) -> Features:
    """The schema of every shard and of the assembled dataset."""
    ids = List(Value("int64"))
    features = {
        "prompt": Value("string"),
        "prompt_id": prompts.features["prompt_id"],
        "sample_index": Value("int64"),
        "reasoning": Value("string"),
        "image": ImageFeature(),
        "image_tokens": ids,
        "prompt_ids": ids,
        "reasoning_ids": ids,
        **{column: Value("float64") for column in reward_columns},
        "text_reward": Value("float64"),
        "image_reward": Value("float64"),
        "reward_errors": List(Value("string")),
        "reward_failed": Value("bool"),
        "mode": Value("string"),
        "switched": Value("bool"),
        "forced_switch": Value("bool"),
        "seed": Value("int64"),
    }
    for column in extra_columns(prompts):
        features[column] = prompts.features[column]
    return Features(features)
