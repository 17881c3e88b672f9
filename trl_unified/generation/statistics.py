"""Statistics of a self-generated dataset (recorded in its run file and dataset card, printed by the CLI)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from datasets import Dataset

from ..rewards.scoring import IMAGE_PREFIX, TEXT_PREFIX


def reward_columns_of(dataset: Dataset) -> list[str]:
    """Per-reward columns (``text/<name>``, ``image/<name>``), then the combined ``text_reward``/``image_reward``."""
    named = [c for c in dataset.column_names if c.startswith((TEXT_PREFIX, IMAGE_PREFIX))]
    return named + [c for c in ("text_reward", "image_reward") if c in dataset.column_names]


def _describe(values: Sequence[float | None]) -> dict[str, Any]:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    not_applicable = sum(v is None for v in values)
    count = len(finite)
    mean = sum(finite) / count if count else math.nan
    std = math.sqrt(sum((v - mean) ** 2 for v in finite) / count) if count else math.nan
    return {
        "mean": mean,
        "std": std,
        "min": min(finite) if finite else math.nan,
        "max": max(finite) if finite else math.nan,
        "count": count,
        "num_failed": len(values) - count - not_applicable,
        "num_not_applicable": not_applicable,
    }


def generation_statistics(dataset: Dataset) -> dict[str, Any]:
    """Numbers of prompts and samples, per-reward mean/std/min/max and failures, switch rates, reward failures.

    ``switch_rate`` is the autonomous switch rate: the fraction of ``unified``-mode samples in which the model emitted
    begin-of-image by itself (``None`` when no sample is in unified mode); ``forced_switch_rate`` the fraction where it
    was forced. ``num_failed_samples`` counts samples with any failed reward evaluation,
    ``num_failed_reward_evaluations`` all failed evaluations (one per reward per sample).
    """
    modes = dataset["mode"]
    unified = [i for i, mode in enumerate(modes) if mode == "unified"]
    switched, forced = dataset["switched"], dataset["forced_switch"]
    errors = dataset["reward_errors"]
    reasoning = dataset["reasoning_ids"]
    return {
        "num_prompts": len(set(dataset["prompt_id"])),
        "num_samples": len(dataset),
        "modes": {mode: modes.count(mode) for mode in sorted(set(modes))},
        "switch_rate": sum(switched[i] for i in unified) / len(unified) if unified else None,
        "forced_switch_rate": sum(forced[i] for i in unified) / len(unified) if unified else None,
        "mean_reasoning_tokens": sum(map(len, reasoning)) / len(reasoning) if reasoning else None,
        "num_failed_samples": sum(bool(e) for e in errors),
        "num_failed_reward_evaluations": sum(len(e) for e in errors),
        "rewards": {column: _describe(dataset[column]) for column in reward_columns_of(dataset)},
    }
