"""Run text and image rewards on a batch and combine them, without letting one bad sample
lose the batch.

Column naming (``ScoreResult.columns()``), all lists aligned with the batch:

* ``text/<name>`` / ``image/<name>``: each reward's value per sample (``<name>`` from
  :func:`~trl_unified.rewards.base.reward_name`); NaN where the reward failed, ``None`` where an
  ``optional`` reward said "not applicable".
* ``text_reward`` / ``image_reward``: the weighted sum over that modality's rewards
  (:func:`~trl_unified.rewards.base.combine_rewards`); NaN when any component failed.
* ``reward_errors``: per sample, a list of ``"<column>: <what went wrong>"`` messages; a sample
  with any message is *failed*.

``ScoreResult.summary()`` flattens the batch into scalars for logging: ``num_samples``,
``num_failed``, ``<column>/mean`` (over finite values) and ``<column>/num_failed`` for every
reward column plus ``text_reward/mean`` and ``image_reward/mean``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .base import RewardFn, RewardSpec, combine_rewards, make_specs

logger = logging.getLogger(__name__)

TEXT_PREFIX = "text/"
IMAGE_PREFIX = "image/"
_RESERVED = ("prompts", "reasoning", "images")


@dataclass
class ScoreResult:
    """Per-sample reward values, combined modality rewards and failure bookkeeping."""

    rewards: dict[str, list[float | None]]
    text_reward: list[float]
    image_reward: list[float]
    reward_errors: list[list[str]]
    failure_counts: dict[str, int]
    batch_errors: dict[str, str] = field(default_factory=dict)
    """Column -> error of the whole-batch call that made us fall back to per-sample calls."""

    def __len__(self) -> int:
        return len(self.reward_errors)

    @property
    def failed(self) -> list[bool]:
        return [bool(errors) for errors in self.reward_errors]

    @property
    def num_failed(self) -> int:
        return sum(self.failed)

    def columns(self) -> dict[str, list[Any]]:
        """All per-sample columns, e.g. to attach to a dataset or a logging table."""
        return {
            **self.rewards,
            "text_reward": list(self.text_reward),
            "image_reward": list(self.image_reward),
            "reward_errors": [list(e) for e in self.reward_errors],
        }

    def summary(self) -> dict[str, float]:
        """Scalar statistics of the batch for logging."""
        out: dict[str, float] = {"num_samples": float(len(self)), "num_failed": float(self.num_failed)}
        out["text_reward/mean"] = _finite_mean(self.text_reward)
        out["image_reward/mean"] = _finite_mean(self.image_reward)
        for column, values in self.rewards.items():
            out[f"{column}/mean"] = _finite_mean(values)
            out[f"{column}/num_failed"] = float(self.failure_counts.get(column, 0))
        return out


def _finite_mean(values: Sequence[float | None]) -> float:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return sum(finite) / len(finite) if finite else math.nan


def _as_list(output: Any, column: str, expected: int) -> list[Any]:
    """Turn a reward's output into a list, insisting on one value per sample."""
    if output is None or isinstance(output, (str, bytes)) or not hasattr(output, "__len__"):
        raise ValueError(f"reward {column!r} must return a list with one value per sample, got {type(output).__name__}")
    values = list(output)
    if len(values) != expected:
        raise ValueError(f"reward {column!r} returned {len(values)} values for a batch of {expected} samples")
    return values


def _check_value(value: Any, spec: RewardSpec) -> tuple[float | None, str | None]:
    """Validate one value: returns (value to store, error message or None)."""
    if value is None:
        return (None, None) if spec.optional else (math.nan, "returned None")
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan, f"returned non-numeric value {value!r}"
    if not math.isfinite(number):
        return math.nan, f"returned {number}"
    return number, None


def _run_reward(
    spec: RewardSpec,
    column: str,
    prompts: list[str],
    reasoning: list[str],
    images: list[Any],
    columns: dict[str, list[Any]],
    batch_errors: dict[str, str],
) -> tuple[list[Any], list[str | None]]:
    """Call a reward on the batch; if it raises, call it once per sample instead.

    Returns raw values and, per sample, the exception message of a failed per-sample call.
    """
    n = len(prompts)
    try:
        output = spec.fn(prompts, reasoning, images, **columns)
    except Exception as exc:  # noqa: BLE001 - any reward bug must not lose the batch
        batch_errors[column] = f"{type(exc).__name__}: {exc}"
        logger.warning("reward %r raised on the batch (%s); retrying per sample", column, batch_errors[column])
    else:
        return _as_list(output, column, n), [None] * n

    values: list[Any] = []
    raised: list[str | None] = []
    for i in range(n):
        sample_columns = {key: [col[i]] for key, col in columns.items()}
        try:
            output = spec.fn([prompts[i]], [reasoning[i]], [images[i]], **sample_columns)
        except Exception as exc:  # noqa: BLE001
            values.append(math.nan)
            raised.append(f"raised {type(exc).__name__}: {exc}")
            continue
        values.append(_as_list(output, column, 1)[0])
        raised.append(None)
    return values, raised


def _score_modality(
    specs: list[RewardSpec],
    prefix: str,
    args: tuple[list[str], list[str], list[Any], dict[str, list[Any]]],
    result: ScoreResult,
) -> list[float]:
    n = len(args[0])
    stored_columns: list[list[float | None]] = []
    for spec in specs:
        column = prefix + spec.name
        raw, raised = _run_reward(spec, column, *args, result.batch_errors)
        stored: list[float | None] = []
        failures = 0
        for i in range(n):
            if raised[i] is not None:
                value, error = math.nan, raised[i]
            else:
                value, error = _check_value(raw[i], spec)
            if error is not None:
                result.reward_errors[i].append(f"{column}: {error}")
                failures += 1
            stored.append(value)
        result.rewards[column] = stored
        result.failure_counts[column] = failures
        stored_columns.append(stored)
    return combine_rewards(stored_columns, [s.weight for s in specs], num_samples=n)


def score_batch(
    text_rewards: Sequence[RewardFn],
    image_rewards: Sequence[RewardFn],
    prompts: Sequence[str],
    reasoning: Sequence[str],
    images: Sequence[Any],
    columns: Mapping[str, Sequence[Any]] | None = None,
    text_reward_weights: Sequence[float] | Mapping[str, float] | None = None,
    image_reward_weights: Sequence[float] | Mapping[str, float] | None = None,
) -> ScoreResult:
    """Score a batch with every text and image reward; see the module docstring for the columns.

    Each reward is called once on the whole batch as ``reward(prompts, reasoning, images,
    **columns)``. If that call raises, the reward is called again one sample at a time, so only
    the samples that really break it are lost. A sample is failed (listed in ``reward_errors``,
    counted in ``failure_counts``, combined reward NaN) when its reward raised, returned NaN/inf
    or a non-number, or returned ``None`` without being ``optional``. A reward returning the
    wrong number of values is a bug in the reward, not in a sample: that raises ``ValueError``.

    Weights are a list aligned with the rewards or a ``{name: weight}`` dict; default 1.0.
    """
    prompts, reasoning, images = list(prompts), list(reasoning), list(images)
    n = len(prompts)
    if len(reasoning) != n or len(images) != n:
        raise ValueError(
            f"prompts, reasoning and images must have the same length, got {n}, {len(reasoning)}, {len(images)}"
        )
    extra = {key: list(values) for key, values in (columns or {}).items()}
    for key, values in extra.items():
        if key in _RESERVED:
            raise ValueError(f"column name {key!r} is reserved for the positional reward arguments")
        if len(values) != n:
            raise ValueError(f"column {key!r} has {len(values)} values for a batch of {n} samples")

    text_specs = make_specs(text_rewards, text_reward_weights)
    image_specs = make_specs(image_rewards, image_reward_weights)
    result = ScoreResult(
        rewards={}, text_reward=[], image_reward=[], reward_errors=[[] for _ in range(n)], failure_counts={}
    )
    args = (prompts, reasoning, images, extra)
    result.text_reward = _score_modality(text_specs, TEXT_PREFIX, args, result)
    result.image_reward = _score_modality(image_specs, IMAGE_PREFIX, args, result)
    return result
