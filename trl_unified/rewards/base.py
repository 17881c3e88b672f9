"""Reward naming, per-reward settings and the weighted combination of rewards.

Kept free of torch/transformers so that plain-Python rewards and the scoring loop can be
used (and tested) without loading any model.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

RewardFn = Callable[..., Sequence[Any]]
"""``reward(prompts, reasoning, images, **columns) -> list[float | None]``."""


def reward_name(fn: Any) -> str:
    """The name a reward is reported under: its ``name`` attribute, else ``__name__``.

    ``functools.partial`` objects are unwrapped and callable instances without either attribute
    fall back to their class name, so every reward gets a stable, readable name.
    """
    name = getattr(fn, "name", None)
    if isinstance(name, str) and name:
        return name
    if isinstance(fn, functools.partial):
        return reward_name(fn.func)
    name = getattr(fn, "__name__", None)
    if isinstance(name, str) and name:
        return name
    return type(fn).__name__


def score_present(items: Sequence[Any], score: Callable[[list[Any]], Sequence[float]]) -> list[float | None]:
    """Score the items that are present (not ``None``) in one call and align the results: ``None`` where absent.

    Rewards use it so that a sample without the modality they judge (no image, no reasoning) is "not applicable".
    """
    present = [i for i, item in enumerate(items) if item is not None]
    scores: list[float | None] = [None] * len(items)
    if present:
        for i, value in zip(present, score([items[i] for i in present])):
            scores[i] = float(value)
    return scores


@dataclass(frozen=True)
class RewardSpec:
    """A reward together with how it is combined.

    ``optional`` rewards may return ``None`` for a sample to mean "not applicable": the sample's
    combined reward then simply omits them. For other rewards ``None`` is a failure, because the
    combined value would silently change meaning if a required component were dropped.
    """

    fn: RewardFn
    weight: float = 1.0
    name: str = ""
    optional: bool = False

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise TypeError(f"reward {self.fn!r} is not callable")
        if not self.name:
            object.__setattr__(self, "name", reward_name(self.fn))
        if not math.isfinite(float(self.weight)):
            raise ValueError(f"weight of reward {self.name!r} must be finite, got {self.weight!r}")


def make_specs(
    rewards: Sequence[RewardFn],
    weights: Sequence[float] | Mapping[str, float] | None = None,
) -> list[RewardSpec]:
    """Pair rewards with weights (a list aligned with ``rewards``, a ``{name: weight}`` dict, or
    ``None`` for all 1.0). ``optional`` is read from the reward's ``optional`` attribute.

    Names must be unique within the list, since they become column names.
    """
    rewards = list(rewards)
    names = [reward_name(fn) for fn in rewards]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(
            f"reward names must be unique within a modality, duplicated: {duplicates}; "
            "give the rewards distinct `name` attributes"
        )
    if weights is None:
        resolved = [1.0] * len(rewards)
    elif isinstance(weights, Mapping):
        unknown = sorted(set(weights) - set(names))
        if unknown:
            raise ValueError(f"weights given for unknown rewards {unknown}; rewards are {names}")
        resolved = [float(weights.get(n, 1.0)) for n in names]
    else:
        resolved = [float(w) for w in weights]
        if len(resolved) != len(rewards):
            raise ValueError(f"got {len(resolved)} weights for {len(rewards)} rewards {names}")
    return [
        RewardSpec(fn, weight=w, name=n, optional=bool(getattr(fn, "optional", False)))
        for fn, w, n in zip(rewards, resolved, names)
    ]


def combine_rewards(
    values: Sequence[Sequence[float | None]],
    weights: Sequence[float],
    num_samples: int | None = None,
) -> list[float]:
    """Weighted sum over rewards, per sample.

    ``values[k][i]`` is reward ``k`` on sample ``i``. ``None`` means "not applicable" and is left
    out of the sum; NaN (or inf) means the component is missing, which makes the sample's sum NaN
    so a broken component can never masquerade as a low reward. With no rewards, or none
    applicable, the sum is 0.0 (the empty sum), so an unused modality adds nothing;
    ``num_samples`` is needed only to size that result when ``values`` is empty.
    """
    if len(values) != len(weights):
        raise ValueError(f"got {len(weights)} weights for {len(values)} rewards")
    if not values:
        if num_samples is None:
            raise ValueError("num_samples is required when there are no rewards")
        return [0.0] * num_samples
    n = len(values[0])
    if any(len(v) != n for v in values) or (num_samples is not None and n != num_samples):
        raise ValueError(f"reward value lists have different lengths: {[len(v) for v in values]}")
    combined = []
    for i in range(n):
        total = 0.0
        for column, weight in zip(values, weights):
            value = column[i]
            if value is None:
                continue
            value = float(value)
            if not math.isfinite(value):
                total = math.nan
                break
            total += weight * value
        combined.append(total)
    return combined
