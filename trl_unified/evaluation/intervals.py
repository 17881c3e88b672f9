"""95% (or any level) confidence intervals for per-category scores and for differences between two evaluations.

* 0/1 verdicts: the Wilson score interval (it stays inside [0, 1] and behaves at 0% and 100%, where the normal
  approximation collapses to a zero-width interval); a difference of two proportions: Newcombe's hybrid score
  interval (method 10 of Newcombe 1998), built from the two Wilson intervals.
* Continuous rewards: the Student t interval of the mean; a difference of two means: Welch's t interval.

Pure Python (no scipy): the t quantile is found by bisection on a numerically integrated density.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from statistics import NormalDist


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval; ``method`` says how it was computed."""

    estimate: float
    low: float
    high: float
    n: int
    method: str

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def to_dict(self) -> dict:
        return asdict(self)


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def is_binary(values: Sequence[float]) -> bool:
    """Whether every value is 0 or 1 (a verdict rather than a continuous score)."""
    return all(v in (0, 1) for v in values)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval of a proportion ``successes / n``."""
    if n <= 0:
        return Interval(math.nan, math.nan, math.nan, 0, "wilson")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, n={n}], got {successes}")
    z, p = _z(confidence), successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(p, low, high, n, "wilson")


def _t_pdf(x: float, df: float) -> float:
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(log_c - (df + 1) / 2 * math.log1p(x * x / df))


def _t_cdf_above_half(t: float, df: float, steps: int = 400) -> float:
    """P(0 < T < t) by Simpson's rule (t >= 0)."""
    h = t / steps
    total = _t_pdf(0, df) + _t_pdf(t, df)
    total += sum((4 if i % 2 else 2) * _t_pdf(i * h, df) for i in range(1, steps))
    return total * h / 3


@lru_cache(maxsize=256)
def t_quantile(probability: float, df: float) -> float:
    """The ``probability`` quantile (> 0.5) of Student's t with ``df`` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"df must be > 0, got {df}")
    if df == 1:
        return math.tan(math.pi * (probability - 0.5))
    target, low, high = probability - 0.5, 0.0, 1.0
    while _t_cdf_above_half(high, df) < target:
        high *= 2
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if _t_cdf_above_half(mid, df) < target else (low, mid)
    return (low + high) / 2


def _mean_var(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    return mean, (sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else math.nan)


def t_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Student t interval of the mean of ``values`` (NaN bounds with fewer than two values)."""
    values = [float(v) for v in values]
    if not values:
        return Interval(math.nan, math.nan, math.nan, 0, "t")
    mean, var = _mean_var(values)
    if len(values) < 2:
        return Interval(mean, math.nan, math.nan, 1, "t")
    half = t_quantile(0.5 + confidence / 2, len(values) - 1) * math.sqrt(var / len(values))
    return Interval(mean, mean - half, mean + half, len(values), "t")


def score_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Wilson for 0/1 values, t for anything else."""
    values = [float(v) for v in values]
    if values and is_binary(values):
        return wilson_interval(int(sum(values)), len(values), confidence)
    return t_interval(values, confidence)


def difference_interval(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Interval:
    """Interval of ``mean(b) - mean(a)``: Newcombe's hybrid score interval for two sets of 0/1 values, else Welch."""
    a, b = [float(v) for v in a], [float(v) for v in b]
    if not a or not b:
        return Interval(math.nan, math.nan, math.nan, 0, "none")
    if is_binary(a) and is_binary(b):
        wa, wb = wilson_interval(int(sum(a)), len(a), confidence), wilson_interval(int(sum(b)), len(b), confidence)
        d = wb.estimate - wa.estimate
        low = d - math.sqrt((wb.estimate - wb.low) ** 2 + (wa.high - wa.estimate) ** 2)
        high = d + math.sqrt((wb.high - wb.estimate) ** 2 + (wa.estimate - wa.low) ** 2)
        return Interval(d, low, high, len(a) + len(b), "newcombe")
    (ma, va), (mb, vb) = _mean_var(a), _mean_var(b)
    d = mb - ma
    if len(a) < 2 or len(b) < 2:
        return Interval(d, math.nan, math.nan, len(a) + len(b), "welch")
    sa, sb = va / len(a), vb / len(b)
    se2 = sa + sb
    if se2 == 0:
        return Interval(d, d, d, len(a) + len(b), "welch")
    df = se2 * se2 / (sa * sa / (len(a) - 1) + sb * sb / (len(b) - 1))
    half = t_quantile(0.5 + confidence / 2, df) * math.sqrt(se2)
    return Interval(d, d - half, d + half, len(a) + len(b), "welch")


__all__ = [
    "Interval",
    "difference_interval",
    "is_binary",
    "score_interval",
    "t_interval",
    "t_quantile",
    "wilson_interval",
]
