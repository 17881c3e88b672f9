"""Evaluate a unified model per category: sample, score with any rewards or verifiers, summarise with intervals.

:func:`evaluate_model` samples with :func:`~trl_unified.generation.sampler.generate_samples` (one mode per call),
scores with :func:`~trl_unified.rewards.score_batch`, and returns an :class:`EvalResult`: per category, the mean of
the ``metric`` column (Wilson interval for 0/1 verdicts, t interval otherwise), the accuracy (share of samples whose
``metric`` is at least ``threshold``; Wilson interval), every reward's mean, the switch rate and the reasoning length;
plus the rows themselves.

Written under ``<output_dir>/<name>/`` when ``output_dir`` is given:

* ``samples.jsonl``: one row per sample (``prompt``, ``category``, ``prompt_index``, ``sample_index``, ``mode``,
  ``reasoning``, ``reasoning_tokens``, ``image`` -- the PNG's path relative to the folder --, ``switched``,
  ``forced_switch``, ``rewards`` {column: value}, ``text_reward``, ``image_reward``, ``score``, ``correct``,
  ``reward_errors``);
* ``images/NNNNN.png``, ``grid.png`` (the first samples, the prompt under each, framed green/red by verdict);
* ``results.json`` (settings and per-category numbers), ``report.html`` (:mod:`.report_html`);
* with ``geneval_layout``: ``geneval/<prompt index>/samples/NNNN.png`` and ``geneval/<prompt index>/metadata.jsonl``,
  the layout GenEval's own scorer reads (``evaluation/evaluate_images.py <that folder>``).

:func:`load_evaluation` reads such a folder back (for ``trl-unified compare`` and ``trl-unified target``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..jsonable import jsonable
from .intervals import Interval, score_interval, wilson_interval
from .prompt_sets import PromptSet, load_prompt_set

RESULTS_FILE = "results.json"
SAMPLES_FILE = "samples.jsonl"


@dataclass
class CategoryResult:
    """One category of one evaluation."""

    category: str
    num_samples: int
    score: Interval
    accuracy: Interval
    rewards: dict[str, float]
    switch_rate: float | None
    mean_reasoning_tokens: float
    num_failed: int

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["score"], out["accuracy"] = self.score.to_dict(), self.accuracy.to_dict()
        return out


@dataclass
class EvalResult:
    """Per-category results of one model in one mode, and its rows."""

    name: str
    mode: str
    metric: str
    threshold: float
    categories: dict[str, CategoryResult]
    rows: list[dict[str, Any]] = field(repr=False, default_factory=list)
    folder: str | None = None
    confidence: float = 0.95

    @property
    def accuracy(self) -> dict[str, float]:
        """Accuracy per category (share of samples with ``metric >= threshold``)."""
        return {c: r.accuracy.estimate for c, r in self.categories.items()}

    @property
    def mean_accuracy(self) -> float:
        """Mean over the categories (each category counts the same)."""
        return sum(self.accuracy.values()) / max(len(self.accuracy), 1)

    @property
    def overall(self) -> CategoryResult:
        """All samples pooled."""
        return _category_result("all", self.rows, self.confidence)

    @property
    def num_samples(self) -> int:
        return len(self.rows)

    @property
    def switch_rate(self) -> float:
        """Share of unified-mode samples in which the model emitted begin-of-image by itself (0 in other modes)."""
        return sum(r["switched"] for r in self.rows) / max(len(self.rows), 1)

    @property
    def mean_reasoning_tokens(self) -> float:
        return sum(r["reasoning_tokens"] for r in self.rows) / max(len(self.rows), 1)

    def summary(self) -> dict[str, Any]:
        """Everything but the rows, JSON-ready."""
        return {
            "name": self.name,
            "mode": self.mode,
            "metric": self.metric,
            "threshold": self.threshold,
            "confidence": self.confidence,
            "num_samples": self.num_samples,
            "mean_accuracy": self.mean_accuracy,
            "switch_rate": self.switch_rate,
            "mean_reasoning_tokens": self.mean_reasoning_tokens,
            "overall": self.overall.to_dict(),
            "categories": {c: r.to_dict() for c, r in self.categories.items()},
        }

    @classmethod
    def from_rows(
        cls,
        name: str,
        mode: str,
        rows: list[dict],
        metric: str,
        threshold: float,
        confidence: float = 0.95,
        folder: str | None = None,
    ) -> EvalResult:
        by_category: dict[str, list[dict]] = {}
        for row in rows:
            by_category.setdefault(row["category"], []).append(row)
        categories = {c: _category_result(c, r, confidence) for c, r in by_category.items()}
        return cls(name, mode, metric, threshold, categories, rows, folder, confidence)


def is_finite_number(value: Any) -> bool:
    """A reward or score value that counts: a finite number (None, NaN and infinities do not)."""
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)


def _category_result(category: str, rows: list[dict], confidence: float) -> CategoryResult:
    scores = [r["score"] for r in rows if is_finite_number(r["score"])]
    columns = dict.fromkeys(k for r in rows for k in r["rewards"])
    rewards = {}
    for column in columns:
        values = [r["rewards"].get(column) for r in rows]
        values = [v for v in values if is_finite_number(v)]
        rewards[column] = sum(values) / len(values) if values else math.nan
    unified = [r for r in rows if r["mode"] == "unified"]
    return CategoryResult(
        category=category,
        num_samples=len(rows),
        score=score_interval(scores, confidence),
        accuracy=wilson_interval(sum(bool(r["correct"]) for r in rows), len(rows), confidence),
        rewards=rewards,
        switch_rate=sum(r["switched"] for r in unified) / len(unified) if unified else None,
        mean_reasoning_tokens=sum(r["reasoning_tokens"] for r in rows) / max(len(rows), 1),
        num_failed=sum(bool(r["reward_errors"]) for r in rows),
    )


def repeat_per_category(prompt_set: PromptSet, samples_per_category: int) -> tuple[PromptSet, list[int]]:
    """Each prompt repeated so that every category gets about ``samples_per_category`` samples (at least one per
    prompt), however many prompts it holds: equal counts give every category's score the same precision.
    Returns the repeated set and, per entry, the index of its prompt in ``prompt_set``."""
    counts: dict[str, int] = {}
    for category in prompt_set.categories:
        counts[category] = counts.get(category, 0) + 1
    index = [
        i
        for i, category in enumerate(prompt_set.categories)
        for _ in range(max(1, math.ceil(samples_per_category / counts[category])))
    ]
    repeated = PromptSet(
        [prompt_set.prompts[i] for i in index],
        [prompt_set.categories[i] for i in index],
        [prompt_set.metadata[i] for i in index],
        prompt_set.source,
    )
    return repeated, index


def evaluate_model(
    model,
    processing_class: Any,
    prompts: PromptSet | str | Sequence[str] | Sequence[dict],
    *,
    image_rewards: Sequence[Callable] = (),
    text_rewards: Sequence[Callable] = (),
    image_reward_weights: Sequence[float] | None = None,
    text_reward_weights: Sequence[float] | None = None,
    mode: str = "unified",
    samples_per_prompt: int = 1,
    samples_per_category: int | None = None,
    sampling: Any = None,
    metric: str = "image_reward",
    threshold: float = 0.5,
    confidence: float = 0.95,
    output_dir: str | Path | None = None,
    name: str | None = None,
    adapter: Any = None,
    geneval_layout: bool = False,
    html_report: bool = True,
    grid_size: int = 8,
    report_to: str | Sequence[str] | None = None,
    callbacks: Sequence[Any] = (),
    progress: bool = True,
) -> EvalResult:
    """Evaluate ``model`` in ``mode`` on a categorised prompt set (see the module docstring).

    Args:
        prompts: a :class:`PromptSet` or anything :func:`load_prompt_set` reads.
        image_rewards / text_rewards: reward callables (the protocol of :mod:`trl_unified.rewards`); each becomes a
            ``image/<name>`` / ``text/<name>`` column; ``image_reward``/``text_reward`` are their weighted sums.
            They receive the columns ``category`` and ``metadata`` (the prompt's source row) too.
        samples_per_prompt: N samples per prompt; ``samples_per_category`` instead repeats prompts so that every
            category gets about that many samples (then ``samples_per_prompt`` applies to each repeat).
        sampling: a :class:`~trl_unified.generation.sampler.SamplingConfig` (its ``mode`` is replaced by ``mode``).
        metric / threshold: the column that scores a sample (a reward column, ``image_reward`` or ``text_reward``)
            and the value at which a sample counts as correct.
        report_to / callbacks: also log a samples table and images to these reporters (:mod:`.reporting`).
    """
    from ..generation.sampler import SamplingConfig, generate_samples
    from ..models.registry import get_adapter
    from ..rewards.scoring import score_batch

    prompt_set = original = load_prompt_set(prompts)
    prompt_index = list(range(len(prompt_set)))
    if samples_per_category is not None:
        prompt_set, prompt_index = repeat_per_category(prompt_set, samples_per_category)
    adapter = adapter or get_adapter(model, processing_class)
    sampling = replace(sampling or SamplingConfig(), mode=mode)
    name = name or mode
    samples = generate_samples(model, adapter, prompt_set.prompts, samples_per_prompt, sampling, progress=progress)
    categories = [prompt_set.categories[s.prompt_index] for s in samples]
    scores = score_batch(
        text_rewards,
        image_rewards,
        [s.prompt for s in samples],
        [s.reasoning for s in samples],
        [s.image for s in samples],
        # rewards see each prompt's category and source row (GenEval's `include`/`exclude`, ...) as columns
        columns={"category": categories, "metadata": [prompt_set.metadata[s.prompt_index] for s in samples]},
        text_reward_weights=text_reward_weights,
        image_reward_weights=image_reward_weights,
    )
    columns = scores.columns()
    if metric not in columns or metric == "reward_errors":
        raise ValueError(f"metric {metric!r} is not a reward column; the columns are {sorted(columns)[:-1]}")
    rows = []
    for i, (sample, category) in enumerate(zip(samples, categories)):
        value = columns[metric][i]
        rows.append(
            {
                "prompt": sample.prompt,
                "category": category,
                "prompt_index": prompt_index[sample.prompt_index],
                "sample_index": sample.sample_index,
                "mode": sample.mode,
                "reasoning": sample.reasoning,
                "reasoning_tokens": len(sample.reasoning_ids),
                "image": f"images/{i:05d}.png",
                "switched": bool(sample.switched),
                "forced_switch": bool(sample.forced_switch),
                "rewards": {k: columns[k][i] for k in scores.rewards},
                "text_reward": columns["text_reward"][i],
                "image_reward": columns["image_reward"][i],
                "score": value,
                "correct": bool(is_finite_number(value) and value >= threshold),
                "reward_errors": columns["reward_errors"][i],
            }
        )
    result = EvalResult.from_rows(name, mode, rows, metric, threshold, confidence)
    images = [s.image for s in samples]
    if output_dir is not None:
        folder = Path(output_dir) / name
        write_evaluation(result, images, folder, grid_size=grid_size, html_report=html_report)
        if geneval_layout:
            write_geneval_layout(result, images, original.metadata, folder / "geneval")
    if report_to or callbacks:
        from .reporting import report_samples

        report_samples(f"eval/{name}", rows, images, report_to=report_to, callbacks=callbacks)
    return result


def write_evaluation(
    result: EvalResult, images: Sequence[Any], folder: Path, grid_size: int = 8, html_report: bool = True
) -> None:
    """``samples.jsonl``, ``images/``, ``grid.png``, ``results.json`` and ``report.html`` in ``folder`` (which
    becomes ``result.folder``)."""
    from .grid import image_grid

    result.folder = str(folder)

    (folder / "images").mkdir(parents=True, exist_ok=True)
    for row, image in zip(result.rows, images):
        if image is None:
            raise ValueError("evaluation needs decoded images (SamplingConfig.decode_images=True)")
        image.save(folder / row["image"])
    with open(folder / SAMPLES_FILE, "w", encoding="utf-8") as handle:
        for row in result.rows:
            handle.write(json.dumps(jsonable(row)) + "\n")
    (folder / RESULTS_FILE).write_text(json.dumps(jsonable(result.summary()), indent=2) + "\n")
    shown = result.rows[: grid_size * grid_size]
    if shown:
        image_grid(
            [folder / r["image"] for r in shown], [r["prompt"] for r in shown], [r["correct"] for r in shown], grid_size
        ).save(folder / "grid.png")
    if html_report:
        from .report_html import write_report

        write_report([result], folder / "report.html")


def write_geneval_layout(result: EvalResult, images: Sequence[Any], metadata: list[dict], folder: Path) -> None:
    """GenEval's output layout: ``<folder>/<prompt index, 5 digits>/samples/<n, 4 digits>.png`` and, beside
    ``samples/``, ``metadata.jsonl`` holding that prompt's ``metadata`` row (as GenEval's own generation script writes)."""
    counters: dict[int, int] = {}
    for row, image in zip(result.rows, images):
        index = row["prompt_index"]
        target = folder / f"{index:05d}"
        (target / "samples").mkdir(parents=True, exist_ok=True)
        if index not in counters:
            (target / "metadata.jsonl").write_text(json.dumps(metadata[index]) + "\n")
        number = counters.get(index, 0)
        counters[index] = number + 1
        image.save(target / "samples" / f"{number:04d}.png")


def load_evaluation(folder: str | Path) -> EvalResult:
    """An evaluation written by :func:`evaluate_model` (its ``results.json`` and ``samples.jsonl``)."""
    folder = Path(folder)
    if not (folder / RESULTS_FILE).exists() or not (folder / SAMPLES_FILE).exists():
        raise FileNotFoundError(f"{folder} holds no evaluation ({RESULTS_FILE} and {SAMPLES_FILE} expected)")
    info = json.loads((folder / RESULTS_FILE).read_text())
    rows = []
    for line in (folder / SAMPLES_FILE).read_text().splitlines():
        row = json.loads(line)
        row["score"] = math.nan if row["score"] is None else row["score"]
        rows.append(row)
    return EvalResult.from_rows(
        info["name"], info["mode"], rows, info["metric"], info["threshold"], info.get("confidence", 0.95), str(folder)
    )


__all__ = [
    "CategoryResult",
    "EvalResult",
    "evaluate_model",
    "is_finite_number",
    "load_evaluation",
    "repeat_per_category",
    "write_evaluation",
    "write_geneval_layout",
]
