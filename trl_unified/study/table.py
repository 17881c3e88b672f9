"""The study's numbers: each evaluation's mean and spread over seeds, and each finding's verdict.

Per seed, every evaluation is named ``<model>_<mode>`` (``base_staged``, ``rwr_unified``, ...). The table gives, over
seeds, the mean and standard deviation of accuracy per category and over categories, of the switch rate, of the
plan score (the mean text reward) and of the share of correct plans (text reward 1). A finding compares pairs of
evaluations two ways:

* the per-seed differences: their mean and spread, in how many seeds the claim's side is ahead, and a t interval
  over seeds (which counts the training's randomness: each seed self-generates and trains anew);
* the library's comparison of all seeds' samples pooled (:func:`~trl_unified.evaluation.compare_evaluations`), whose
  interval counts only the evaluation's sampling noise, and treats the two evaluations as independent though they
  share their prompts (so it can be the wider one).

The verdict reads the interval over seeds (the pooled one when there is a single seed): a claim *holds* when it is
above zero, is *reversed* when it is below, and is *within the seed spread* (one seed: *within the sampling noise*)
otherwise.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..evaluation.compare import POOLED, compare_evaluations
from ..evaluation.evaluate import EvalResult, is_finite_number
from ..evaluation.intervals import Interval, difference_interval, t_interval
from ..jsonable import jsonable
from .arms import FINDINGS, Finding


@dataclass
class Spread:
    """One number over seeds."""

    values: list[float]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values) if self.values else math.nan

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "values": self.values}

    def percent(self, signed: bool = False) -> str:
        if not self.values or not math.isfinite(self.mean):
            return "-"
        return f"{100 * self.mean:{'+' if signed else ''}.1f} ± {100 * self.std:.1f}"


def _interval(bounds: list[float] | None) -> str:
    if bounds is None or not all(math.isfinite(b) for b in bounds):
        return "-"
    return f"[{100 * bounds[0]:+.1f}, {100 * bounds[1]:+.1f}]"


def _text_rewards(result: EvalResult) -> list[float]:
    return [r["text_reward"] for r in result.rows if is_finite_number(r["text_reward"]) and r["reasoning_tokens"]]


def plan_score(result: EvalResult) -> float:
    """Mean text reward of the samples that wrote reasoning (NaN when none did)."""
    values = _text_rewards(result)
    return statistics.fmean(values) if values else math.nan


def plan_correct(result: EvalResult) -> float:
    """Share of the samples that wrote reasoning whose text reward is full (1): a correct plan for a verifier such
    as the shapes world's plan checker (NaN when none wrote reasoning)."""
    values = _text_rewards(result)
    return sum(v >= 1 for v in values) / len(values) if values else math.nan


def measure(result: EvalResult, name: str) -> float:
    return {"accuracy": result.mean_accuracy, "switch_rate": result.switch_rate}[name]


def pooled(results: Sequence[EvalResult]) -> EvalResult:
    """One evaluation holding every seed's samples."""
    first = results[0]
    rows = [row for r in results for row in r.rows]
    return EvalResult.from_rows(first.name, first.mode, rows, first.metric, first.threshold, first.confidence)


@dataclass
class StudyTable:
    categories: list[str]
    seeds: list[int]
    rows: dict[str, dict[str, Any]]
    findings: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        rows = {
            name: {k: ({c: s.to_dict() for c, s in v.items()} if isinstance(v, dict) else v.to_dict())
                   for k, v in row.items()}
            for name, row in self.rows.items()
        }  # fmt: skip
        return jsonable({"categories": self.categories, "seeds": self.seeds, "evaluations": rows,
                         "findings": self.findings})  # fmt: skip

    def to_markdown(self) -> str:
        head = ["evaluation", *self.categories, "mean", "switch rate", "plan score", "plans correct"]
        lines = [
            f"Accuracy per category (%), mean ± standard deviation over {len(self.seeds)} seeds {self.seeds}",
            "",
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
        ]
        for name, row in self.rows.items():
            cells = [row["accuracy"][c].percent() if c in row["accuracy"] else "-" for c in self.categories]
            switch = row["switch_rate"].percent() if name.endswith("_unified") else "-"
            plans = [row["plan_score"].percent(), row["plan_correct"].percent()]
            lines.append("| " + " | ".join([name, *cells, row["mean_accuracy"].percent(), switch, *plans]) + " |")
        for finding in self.findings:
            level = f"{100 * finding['confidence']:g}%"
            unit = "switch rate" if finding["measure"] == "switch_rate" else "mean accuracy"
            lines += [
                "",
                f"Finding {finding['number']}: {finding['claim']}",
                "",
                f"| comparison | difference in {unit} (points, mean ± sd over seeds) | seeds ahead | {level} interval "
                f"over seeds | {level} interval, samples pooled | verdict |",
                "|---|---|---|---|---|---|",
            ]
            for pair in finding["pairs"]:
                diff = Spread(pair["differences"])
                lines.append(
                    f"| {pair['baseline']} vs {pair['other']} | {diff.percent(signed=True)} | "
                    f"{pair['seeds_ahead']}/{len(pair['differences'])} | {_interval(pair['seed_interval'])} | "
                    f"{_interval(pair['pooled_interval'])} | {pair['verdict']} |"
                )
        return "\n".join(lines) + "\n"

    def plot(self, path: str | Path) -> None:
        """Mean accuracy per evaluation: the mean over seeds as a bar, its standard deviation, each seed as a dot."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = list(self.rows)
        fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.2))
        for i, name in enumerate(names):
            spread = self.rows[name]["mean_accuracy"]
            ax.barh(i, 100 * spread.mean, xerr=100 * spread.std, capsize=3, color="tab:blue", alpha=0.6)
            ax.plot([100 * v for v in spread.values], [i] * len(spread.values), "k.", markersize=5)
        ax.set_yticks(range(len(names)), names)
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_xlabel(f"mean accuracy over categories (%), {len(self.seeds)} seeds: mean, sd, each seed")
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)

    def save(self, folder: str | Path, stem: str = "study", **extra: Any) -> None:
        """``<stem>.md``, ``<stem>.json`` (with ``extra`` fields beside the table's) and ``<stem>.png`` in
        ``folder``."""
        folder = Path(folder)
        (folder / f"{stem}.md").write_text(self.to_markdown())
        (folder / f"{stem}.json").write_text(json.dumps({**self.to_dict(), **jsonable(extra)}, indent=2) + "\n")
        self.plot(folder / f"{stem}.png")


def study_table(
    evaluations: Mapping[int, Mapping[str, EvalResult]],
    categories: Sequence[str],
    findings: Sequence[Finding] = FINDINGS,
    comparisons_dir: str | Path | None = None,
) -> StudyTable:
    """Aggregate ``evaluations[seed][name]`` over seeds (see the module docstring). With ``comparisons_dir``, each
    finding's pooled comparison is saved there as ``finding<N>.md/.json/.png`` (one per baseline)."""
    seeds = list(evaluations)
    names = list(dict.fromkeys(n for per_seed in evaluations.values() for n in per_seed))
    rows = {}
    for name in names:
        results = [evaluations[s][name] for s in seeds if name in evaluations[s]]
        rows[name] = {
            "accuracy": {c: Spread([r.accuracy[c] for r in results if c in r.accuracy]) for c in categories},
            "mean_accuracy": Spread([r.mean_accuracy for r in results]),
            "switch_rate": Spread([r.switch_rate for r in results]),
            "plan_score": Spread([p for p in map(plan_score, results) if math.isfinite(p)]),
            "plan_correct": Spread([p for p in map(plan_correct, results) if math.isfinite(p)]),
        }
    return StudyTable(list(categories), seeds, rows, [_finding(f, evaluations, comparisons_dir) for f in findings])


def _finding(finding: Finding, evaluations, comparisons_dir) -> dict[str, Any]:
    seeds = list(evaluations)
    pairs = [(a, b) for a, b in finding.pairs if all(a in evaluations[s] and b in evaluations[s] for s in seeds)]
    out = {"number": finding.number, "claim": finding.claim, "measure": finding.measure, "pairs": []}
    by_baseline: dict[str, list[str]] = {}
    for a, b in pairs:
        by_baseline.setdefault(a, []).append(b)
    intervals: dict[tuple[str, str], Interval] = {}
    confidence = 0.95
    for baseline, others in by_baseline.items():
        merged = [pooled([evaluations[s][n] for s in seeds]) for n in [baseline, *others]]
        confidence = merged[0].confidence
        if finding.measure == "accuracy":
            comparison = compare_evaluations(merged)
            overall = next(c for c in comparison.categories if c.category == POOLED)
            for other, diff in zip(others, overall.differences[1:]):
                intervals[(baseline, other)] = diff
            if comparisons_dir is not None:
                suffix = "" if len(by_baseline) == 1 else f"_{baseline}"
                comparison.save(comparisons_dir, f"finding{finding.number}{suffix}")
        else:  # the switch rate: share of unified samples that switched by themselves
            switched = [[float(r["switched"]) for r in m.rows] for m in merged]
            for other, values in zip(others, switched[1:]):
                intervals[(baseline, other)] = difference_interval(values, switched[0], confidence)
    for a, b in pairs:
        differences = [measure(evaluations[s][a], finding.measure) - measure(evaluations[s][b], finding.measure)
                       for s in seeds]  # fmt: skip
        # compare_evaluations gives other - baseline; the claim's side is `a`, so the sign flips
        interval = intervals[(a, b)]
        low, high = (-interval.high, -interval.low) if finding.measure == "accuracy" else (interval.low, interval.high)
        over_seeds = t_interval(differences, confidence) if len(differences) > 1 else None
        judged = (over_seeds.low, over_seeds.high) if over_seeds is not None else (low, high)
        spread = "within the seed spread" if over_seeds is not None else "within the sampling noise"
        verdict = "holds" if judged[0] > 0 else "reversed" if judged[1] < 0 else spread
        out["pairs"].append(
            {
                "baseline": a,
                "other": b,
                "differences": differences,
                "seeds_ahead": sum(d > 0 for d in differences),
                "seed_interval": None if over_seeds is None else [over_seeds.low, over_seeds.high],
                "pooled_difference": -interval.estimate if finding.measure == "accuracy" else interval.estimate,
                "pooled_interval": [low, high],
                "verdict": verdict,
            }
        )
    out["confidence"] = confidence
    return out


__all__ = ["Spread", "StudyTable", "plan_correct", "plan_score", "pooled", "study_table"]
