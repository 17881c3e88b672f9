"""Reward -> per-sample weight: the whole reward-weighted-regression (RWR) math.

Weights are computed once over the entire training set, before training, so the objective does not depend on the
batch size, gradient accumulation or the number of processes. Each modality gets its own weights from its own
reward column.

Schemes (``r`` a reward, ``beta`` a temperature, groups are the K samples of one prompt):

* ``exp``     RWR: ``w = exp((r - baseline) / beta)``, the baseline being the dataset mean (``weight_normalization``
              ``"mean"``) or the group mean (``"group"``); weights are then divided by their mean over the dataset
              (``"mean"``) or over each group (``"group"``) so they average 1.
* ``softmax`` ``w = K * softmax(r / beta)`` within each group (averages 1 within a group).
* ``rank``    within each group, ``w = 2 * rank / (K - 1)`` with ranks 0..K-1 ascending (ties share their mean
              rank): a scale-free weight that averages 1.
* ``filter``  best-of-N / RAFT: weight 1 for the top ``filter_top_fraction`` of each group and/or rewards at or
              above ``filter_threshold``, else 0.
* ``none``    every weight is 1: plain SFT on the samples.

``max_weight`` finally clips every weight (after normalisation), bounding the influence of any one sample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SCHEMES = ("exp", "softmax", "rank", "filter", "none")
NORMALIZATIONS = ("mean", "group", "none")


def _group_indices(groups: Sequence | None, n: int) -> list[np.ndarray]:
    if groups is None:
        return [np.arange(n)]
    by_key: dict = {}
    for i, key in enumerate(groups):
        by_key.setdefault(key, []).append(i)
    return [np.asarray(idx) for idx in by_key.values()]


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ascending ranks 0..n-1, ties sharing their mean rank."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(len(values))
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def compute_weights(
    rewards: Sequence[float],
    *,
    scheme: str = "exp",
    beta: float = 1.0,
    groups: Sequence | None = None,
    normalization: str = "mean",
    max_weight: float | None = None,
    filter_top_fraction: float | None = None,
    filter_threshold: float | None = None,
) -> np.ndarray:
    """Turn one modality's rewards into per-sample weights (see the module docstring)."""
    if scheme not in SCHEMES:
        raise ValueError(f"reward_weighting must be one of {SCHEMES}, got {scheme!r}")
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"weight_normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    if scheme in ("exp", "softmax") and not beta > 0:
        raise ValueError(f"beta must be > 0 for the {scheme!r} weighting, got {beta}")
    r = np.asarray(rewards, dtype=np.float64)
    n = len(r)
    if n == 0:
        return r
    group_idx = _group_indices(groups, n)

    if scheme == "none":
        w = np.ones(n)
    elif scheme == "exp":
        w = np.empty(n)
        for idx in group_idx if normalization == "group" else [np.arange(n)]:
            w[idx] = np.exp((r[idx] - r[idx].mean()) / beta)
            if normalization != "none":
                w[idx] /= w[idx].mean()
    elif scheme == "softmax":
        w = np.empty(n)
        for idx in group_idx:
            z = np.exp((r[idx] - r[idx].max()) / beta)
            w[idx] = len(idx) * z / z.sum()
    elif scheme == "rank":
        w = np.ones(n)
        for idx in group_idx:
            if len(idx) > 1:
                w[idx] = 2.0 * _ranks(r[idx]) / (len(idx) - 1)
    else:  # filter
        if filter_top_fraction is None and filter_threshold is None:
            raise ValueError("reward_weighting='filter' needs filter_top_fraction and/or filter_threshold")
        keep = np.ones(n, dtype=bool)
        if filter_threshold is not None:
            keep &= r >= filter_threshold
        if filter_top_fraction is not None:
            if not 0 < filter_top_fraction <= 1:
                raise ValueError(f"filter_top_fraction must be in (0, 1], got {filter_top_fraction}")
            top = np.zeros(n, dtype=bool)
            for idx in group_idx:
                k = max(1, math.ceil(filter_top_fraction * len(idx)))
                top[idx[np.argsort(-r[idx], kind="stable")[:k]]] = True
            keep &= top
        w = keep.astype(np.float64)

    if max_weight is not None:
        w = np.minimum(w, max_weight)
    return w


@dataclass
class WeightStats:
    """Summary of one modality's weights, logged at the start of training."""

    min: float
    max: float
    mean: float
    ess: float  # effective sample size (sum w)^2 / sum w^2, as a fraction of the samples
    zero: int  # samples with weight 0

    @classmethod
    def of(cls, weights: np.ndarray) -> WeightStats:
        w = np.asarray(weights, dtype=np.float64)
        if len(w) == 0 or not (w > 0).any():
            return cls(0.0, 0.0, 0.0, 0.0, int(len(w)))
        ess = w.sum() ** 2 / (w**2).sum() / len(w)
        return cls(float(w.min()), float(w.max()), float(w.mean()), float(ess), int((w == 0).sum()))
