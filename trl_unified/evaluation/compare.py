"""Two or more evaluations side by side: per category, each one's value with its interval, and each one's difference
from the first (the baseline) with the interval of that difference and whether it excludes zero.

``metric="accuracy"``: the share of correct samples (Wilson intervals; differences by Newcombe's hybrid score
interval). ``metric="score"``: the mean of each evaluation's scoring column (Wilson/Newcombe for 0/1 verdicts, t/Welch
otherwise). Intervals treat the evaluations as independent samples (conservative when they share prompts).
Output: :meth:`Comparison.to_markdown`, :meth:`Comparison.to_dict` (JSON) and :meth:`Comparison.plot` (matplotlib).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..jsonable import jsonable
from .evaluate import EvalResult
from .intervals import Interval, difference_interval, score_interval

METRICS = ("accuracy", "score")
POOLED = "all"


@dataclass
class CategoryComparison:
    """One category: a value per evaluation, and a difference from the baseline per evaluation (None for itself)."""

    category: str
    values: list[Interval]
    differences: list[Interval | None]

    def to_dict(self, names: Sequence[str]) -> dict[str, Any]:
        return {
            "category": self.category,
            "values": {n: v.to_dict() for n, v in zip(names, self.values)},
            "differences": {
                n: {**d.to_dict(), "excludes_zero": d.excludes_zero()}
                for n, d in zip(names, self.differences)
                if d is not None
            },
        }


@dataclass
class Comparison:
    names: list[str]
    metric: str
    confidence: float
    categories: list[CategoryComparison]
    mean_over_categories: list[float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "evaluations": self.names,
            "baseline": self.names[0],
            "metric": self.metric,
            "confidence": self.confidence,
            "categories": [c.to_dict(self.names) for c in self.categories],
            "mean_over_categories": dict(zip(self.names, self.mean_over_categories)),
        }

    def to_json(self) -> str:
        return json.dumps(jsonable(self.to_dict()), indent=2)

    def to_markdown(self) -> str:
        """A table: per category, each evaluation's value [interval] (n) and each difference from the baseline,
        marked ``*`` when its interval excludes zero."""
        level = f"{100 * self.confidence:g}%"
        head = ["category"] + [f"{n}" for n in self.names] + [f"{n} - {self.names[0]}" for n in self.names[1:]]
        lines = [
            f"{self.metric} per category ({level} intervals; `*`: the difference's interval excludes zero)",
            "",
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
        ]
        for c in self.categories:
            cells = [f"{_pct(v.estimate)} [{_pct(v.low)}, {_pct(v.high)}] (n={v.n})" for v in c.values]
            cells += [
                f"{_pct(d.estimate, True)} [{_pct(d.low, True)}, {_pct(d.high, True)}]{' *' if d.excludes_zero() else ''}"
                for d in c.differences[1:]
            ]
            lines.append("| " + " | ".join([c.category, *cells]) + " |")
        base = self.mean_over_categories[0]
        means = [_pct(m) for m in self.mean_over_categories] + [
            _pct(m - base, True) for m in self.mean_over_categories[1:]
        ]
        lines.append("| " + " | ".join(["mean over categories", *means]) + " |")
        return "\n".join(lines) + "\n"

    def plot(self, path: str | Path, title: str | None = None) -> None:
        """Grouped bars per category, one per evaluation, with their intervals as error bars."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        k = len(self.names)
        width = 0.8 / k
        fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(self.categories) * max(1, k / 2)), 4))
        for j, name in enumerate(self.names):
            values = [c.values[j] for c in self.categories]
            x = [i - 0.4 + width * (j + 0.5) for i in range(len(self.categories))]
            est = [100 * v.estimate if math.isfinite(v.estimate) else 0 for v in values]
            err = [
                [max(0.0, e - 100 * v.low) if math.isfinite(v.low) else 0 for e, v in zip(est, values)],
                [max(0.0, 100 * v.high - e) if math.isfinite(v.high) else 0 for e, v in zip(est, values)],
            ]
            ax.bar(x, est, width, yerr=err, capsize=3, label=name)
        ax.set_xticks(range(len(self.categories)), [c.category for c in self.categories])
        ax.set_ylabel(f"{self.metric} (%)" if self.metric == "accuracy" else f"{self.metric} (x100)")
        if self.metric == "accuracy":
            ax.set_ylim(0, 100)
        ax.set_title(title or f"{self.metric} per category, {100 * self.confidence:g}% intervals")
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)

    def save(self, folder: str | Path, stem: str = "comparison") -> None:
        """``<stem>.md``, ``<stem>.json`` and ``<stem>.png`` in ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{stem}.md").write_text(self.to_markdown())
        (folder / f"{stem}.json").write_text(self.to_json() + "\n")
        self.plot(folder / f"{stem}.png")


def _pct(value: float, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"


def _values(result: EvalResult, category: str, metric: str) -> list[float]:
    rows = result.rows if category == POOLED else [r for r in result.rows if r["category"] == category]
    if metric == "accuracy":
        return [1.0 if r["correct"] else 0.0 for r in rows]
    return [float(r["score"]) for r in rows if r["score"] is not None and math.isfinite(r["score"])]


def compare_evaluations(
    evaluations: Sequence[EvalResult], metric: str = "accuracy", confidence: float | None = None
) -> Comparison:
    """Compare ``evaluations`` (the first is the baseline) per category and pooled (``all``)."""
    if len(evaluations) < 2:
        raise ValueError(f"a comparison needs at least two evaluations, got {len(evaluations)}")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    names = [e.name for e in evaluations]
    if len(set(names)) != len(names):
        raise ValueError(f"evaluation names must differ to be told apart, got {names}")
    confidence = confidence or evaluations[0].confidence
    categories = list(dict.fromkeys(c for e in evaluations for c in e.categories))
    rows = []
    for category in [*categories, POOLED]:
        values = [_values(e, category, metric) for e in evaluations]
        rows.append(
            CategoryComparison(
                category,
                [score_interval(v, confidence) for v in values],
                [None] + [difference_interval(values[0], v, confidence) for v in values[1:]],
            )
        )
    means = []  # each evaluation's mean over its categories (not the pooled row)
    for index in range(len(evaluations)):
        per = [r.values[index].estimate for r in rows if r.category != POOLED]
        per = [p for p in per if math.isfinite(p)]
        means.append(sum(per) / len(per) if per else math.nan)
    return Comparison(names, metric, confidence, rows, means)


__all__ = ["CategoryComparison", "Comparison", "compare_evaluations"]
