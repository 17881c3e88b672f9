"""Reward -> per-sample weight: the whole reward-weighted-regression (RWR) math, in numpy.

Weights are computed once over the entire training set, before training, so the objective does not depend on the
batch size, gradient accumulation or the number of processes. Each modality gets its own weights from its own
reward, over the rows that have that modality. Each *source* (``sources``: one self-generated dataset among several)
is weighted on its own, and *groups* (``groups``: the K samples of one prompt) are nested in sources.

Schemes, with ``r`` a reward, ``beta`` a temperature, ``S`` a source and ``G`` a group:

* ``exp``     RWR: ``w_i = exp(r_i / beta) / mean_{j in P} exp(r_j / beta)`` over the pool ``P`` = the row's source
              (``normalization="mean"``) or group (``"group"``): weights average 1 over each pool. Computed as
              ``exp((r_i - max_P r) / beta)`` divided by its mean, which cannot overflow. With ``"none"``:
              ``w_i = exp((r_i - mean_S r) / beta)``, not normalised (may overflow; callers check).
* ``softmax`` ``w_i = |G| * softmax_G(r / beta)_i``: the same weights as ``exp`` with ``"group"`` normalisation.
* ``rank``    ``w_i = 2 * rank_G(i) / (|G| - 1)``, ranks 0..|G|-1 ascending, ties sharing their mean rank.
* ``filter``  best-of-N / RAFT: 1 for the top ``ceil(filter_top_fraction * |G|)`` rows of each group (ties at the
              cut-off go to the row that comes first in the dataset) and/or rewards >= ``filter_threshold``, else 0.
* ``none``    every weight is 1.

*Constant groups*: under a group-relative scheme (``softmax``, ``rank``, ``exp`` with ``"group"`` normalisation,
``filter`` with a top fraction) a group whose rewards are all equal has no contrast and gets weight 0, unless
``keep_constant_groups`` (then 1 each; ``filter`` keeps its first rows). A group of one sample is constant.

``max_weight`` finally clips every weight, bounding the influence of any one sample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SCHEMES = ("exp", "softmax", "rank", "filter", "none")
NORMALIZATIONS = ("mean", "group", "none")


def is_group_relative(scheme: str, normalization: str = "mean", filter_top_fraction: float | None = None) -> bool:
    """Whether a row's weight depends on the other rewards of its group (and constant groups get no weight)."""
    return (
        scheme in ("softmax", "rank")
        or (scheme == "exp" and normalization == "group")
        or (scheme == "filter" and filter_top_fraction is not None)
    )


def _split(indices: np.ndarray, keys: Sequence | None) -> list[np.ndarray]:
    """``indices`` split by ``keys[i]``, pools in order of first appearance, dataset order within each pool."""
    if keys is None:
        return [indices]
    pools: dict = {}
    for i in indices:
        pools.setdefault(keys[i], []).append(i)
    return [np.asarray(pool, dtype=np.int64) for pool in pools.values()]


def _pools(n: int, groups: Sequence | None, sources: Sequence | None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    by_source = _split(np.arange(n), sources)
    return by_source, [group for source in by_source for group in _split(source, groups)]


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ascending ranks 0..n-1, ties sharing their mean rank."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(len(values))
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def count_constant_groups(
    rewards: Sequence[float], groups: Sequence | None = None, sources: Sequence | None = None
) -> tuple[int, int]:
    """(groups whose rewards are all equal, all groups), groups taken within sources."""
    r = np.asarray(rewards, dtype=np.float64)
    pools = [idx for idx in _pools(len(r), groups, sources)[1] if len(idx)]
    return sum(int(np.ptp(r[idx]) == 0) for idx in pools), len(pools)


def compute_weights(
    rewards: Sequence[float],
    *,
    scheme: str = "exp",
    beta: float = 1.0,
    groups: Sequence | None = None,
    sources: Sequence | None = None,
    normalization: str = "mean",
    max_weight: float | None = None,
    filter_top_fraction: float | None = None,
    filter_threshold: float | None = None,
    keep_constant_groups: bool = False,
) -> np.ndarray:
    """Turn one modality's rewards into per-sample weights (see the module docstring)."""
    if scheme not in SCHEMES:
        raise ValueError(f"reward_weighting must be one of {SCHEMES}, got {scheme!r}")
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"weight_normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    if scheme in ("exp", "softmax") and not beta > 0:
        raise ValueError(f"beta must be > 0 for the {scheme!r} weighting, got {beta}")
    if scheme == "filter" and filter_top_fraction is None and filter_threshold is None:
        raise ValueError("reward_weighting='filter' needs filter_top_fraction and/or filter_threshold")
    if filter_top_fraction is not None and not 0 < filter_top_fraction <= 1:
        raise ValueError(f"filter_top_fraction must be in (0, 1], got {filter_top_fraction}")
    r = np.asarray(rewards, dtype=np.float64)
    n = len(r)
    if n == 0:
        return r
    by_source, by_group = _pools(n, groups, sources)
    w = np.ones(n)

    if scheme in ("exp", "softmax"):
        for idx in by_group if scheme == "softmax" or normalization == "group" else by_source:
            if scheme == "exp" and normalization == "none":
                with np.errstate(over="ignore"):
                    w[idx] = np.exp((r[idx] - r[idx].mean()) / beta)
            else:  # exp(r/beta) / mean(exp(r/beta)), shifted by the max: every term is in [0, 1], the max is 1
                z = np.exp((r[idx] - r[idx].max()) / beta)
                w[idx] = z / z.mean()
    elif scheme == "rank":
        for idx in by_group:
            if len(idx) > 1:
                w[idx] = 2.0 * _ranks(r[idx]) / (len(idx) - 1)
    elif scheme == "filter":
        keep = np.ones(n, dtype=bool) if filter_threshold is None else r >= filter_threshold
        if filter_top_fraction is not None:
            top = np.zeros(n, dtype=bool)
            for idx in by_group:
                k = max(1, math.ceil(filter_top_fraction * len(idx)))
                top[idx[np.argsort(-r[idx], kind="stable")[:k]]] = True  # stable: ties go to the earlier row
            keep &= top
        w = keep.astype(np.float64)

    if not keep_constant_groups and is_group_relative(scheme, normalization, filter_top_fraction):
        for idx in by_group:
            if np.ptp(r[idx]) == 0:
                w[idx] = 0.0
    if max_weight is not None:
        w = np.minimum(w, max_weight)
    return w


@dataclass
class WeightStats:
    """Summary of one modality's weights (over the rows that have that modality), logged at the start of training."""

    min: float
    max: float
    mean: float
    ess: float  # effective sample size (sum w)^2 / sum w^2, as a fraction of the rows
    zero: int  # rows with weight 0
    rows: int  # rows that have this modality
    constant_groups: int = 0  # groups with no reward contrast (weight 0 unless keep_constant_groups)

    @classmethod
    def of(cls, weights: np.ndarray, constant_groups: int = 0) -> WeightStats:
        w = np.asarray(weights, dtype=np.float64)
        n = len(w)
        if n == 0:
            return cls(0.0, 0.0, 0.0, 0.0, 0, 0, constant_groups)
        ess = w.sum() ** 2 / (w**2).sum() / n if (w > 0).any() and np.isfinite(w).all() else 0.0
        return cls(float(w.min()), float(w.max()), float(w.mean()), float(ess), int((w == 0).sum()), n, constant_groups)
