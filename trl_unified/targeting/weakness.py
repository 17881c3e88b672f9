"""Weakness report: from an evaluation, each category's failure rate (with its interval) and its share of the next
prompt pool.

A category's share is proportional to its failure rate, with a floor (``min_share``) so that no category is forgotten
(a category the model has mastered still gets a few prompts, and forgetting it would show), then normalised to sum to
one. The number of prompts per category follows the shares by largest remainders, so the counts sum to the pool size
exactly. A category that was asked for but not evaluated counts as failing everywhere.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..evaluation.evaluate import EvalResult


@dataclass
class CategoryTarget:
    """One category's line of the report."""

    category: str
    failure_rate: float
    low: float
    high: float
    num_samples: int
    share: float
    count: int = 0
    drawn: int = 0
    unique: int = 0


@dataclass
class WeaknessReport:
    """Per category: failure rate, its interval, share of the pool, prompts planned and drawn."""

    evaluation: str
    min_share: float
    confidence: float
    categories: dict[str, CategoryTarget] = field(default_factory=dict)

    @property
    def shares(self) -> dict[str, float]:
        return {c: t.share for c, t in self.categories.items()}

    def weakest(self, k: int = 2) -> list[str]:
        return sorted(self.categories, key=lambda c: -self.categories[c].failure_rate)[:k]

    def allocate(self, size: int) -> dict[str, int]:
        """Prompts per category for a pool of ``size`` (:func:`allocate`); stored as ``count``."""
        counts = allocate(self.shares, size)
        for c, n in counts.items():
            self.categories[c].count = n
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "evaluation": self.evaluation,
            "min_share": self.min_share,
            "confidence": self.confidence,
            "categories": [asdict(t) for t in self.categories.values()],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_markdown(self) -> str:
        level = f"{100 * self.confidence:g}%"
        lines = [
            f"Weakness report of `{self.evaluation}` (shares by failure rate, floor {100 * self.min_share:g}%)",
            "",
            f"| category | failure rate | {level} interval | samples | share | prompts drawn | unique |",
            "|---|---|---|---|---|---|---|",
        ]
        for t in sorted(self.categories.values(), key=lambda t: -t.share):
            interval = f"[{100 * t.low:.1f}, {100 * t.high:.1f}]" if t.num_samples else "not evaluated"
            lines.append(
                f"| {t.category} | {100 * t.failure_rate:.1f}% | {interval} | {t.num_samples} | "
                f"{100 * t.share:.1f}% | {t.drawn} | {t.unique} |"
            )
        return "\n".join(lines) + "\n"


def weakness_report(
    evaluation: EvalResult, min_share: float = 0.1, categories: Sequence[str] | None = None
) -> WeaknessReport:
    """Failure rates of ``evaluation`` per category (1 - accuracy, Wilson interval) and pool shares.

    ``categories``: the categories the pool may draw (default: those evaluated); one not evaluated counts as failing
    everywhere (failure rate 1, no interval).
    """
    categories = list(categories) if categories is not None else list(evaluation.categories)
    if not categories:
        raise ValueError("no categories: the evaluation is empty and none were given")
    if not 0 <= min_share * len(categories) <= 1:
        raise ValueError(f"min_share {min_share} times {len(categories)} categories must be in [0, 1]")
    report = WeaknessReport(evaluation.name, min_share, evaluation.confidence)
    failures = {}
    for category in categories:
        result = evaluation.categories.get(category)
        if result is None:
            failures[category] = (1.0, 1.0, 1.0, 0)
        else:
            accuracy = result.accuracy
            failures[category] = (1 - accuracy.estimate, 1 - accuracy.high, 1 - accuracy.low, result.num_samples)
    shares = _shares({c: f[0] for c, f in failures.items()}, min_share)
    for category, (rate, low, high, n) in failures.items():
        report.categories[category] = CategoryTarget(category, rate, low, high, n, shares[category])
    return report


def allocate(shares: Mapping[str, float], size: int) -> dict[str, int]:
    """Prompts per category for a pool of ``size`` with these ``shares`` (largest remainders: they sum to ``size``)."""
    if size < 0:
        raise ValueError(f"pool size must be >= 0, got {size}")
    exact = {c: share * size for c, share in shares.items()}
    counts = {c: math.floor(v) for c, v in exact.items()}
    order = sorted(exact, key=lambda c: (-(exact[c] - counts[c]), list(exact).index(c)))
    for c in order[: size - sum(counts.values())]:
        counts[c] += 1
    return counts


def _shares(failure_rates: Mapping[str, float], min_share: float) -> dict[str, float]:
    total = sum(failure_rates.values())
    if total == 0:  # nothing fails: spread evenly
        return {c: 1 / len(failure_rates) for c in failure_rates}
    shares = {c: max(min_share, e / total) for c, e in failure_rates.items()}
    norm = sum(shares.values())
    return {c: s / norm for c, s in shares.items()}


__all__ = ["CategoryTarget", "WeaknessReport", "allocate", "weakness_report"]
