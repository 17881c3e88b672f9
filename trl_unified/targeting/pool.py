"""Weakness report -> targeted pool: the prompts of the next self-generation round, where the model fails most.

:func:`target` runs the whole step: the report of an evaluation (:func:`~.weakness.weakness_report`), then
:func:`build_targeted_pool` draws each category's count from a prompt source (:mod:`.sources`), never a prompt of the
evaluation. :func:`write_pool` saves ``pool.jsonl`` (``prompt``, ``category``; what ``trl-unified generate --prompts``
reads), ``weakness_report.json`` and ``weakness_report.md``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ..evaluation.evaluate import EvalResult, load_evaluation
from .sources import PromptSource
from .weakness import WeaknessReport, allocate, weakness_report

POOL_FILE = "pool.jsonl"


def build_targeted_pool(
    report: WeaknessReport, source: PromptSource, size: int, *, exclude: Iterable[str] = (), seed: int = 0
) -> list[dict[str, str]]:
    """``size`` prompts (``{"prompt", "category"}``) drawn per ``report``'s shares, shuffled; none in ``exclude``.
    Fills the report's ``drawn``/``unique`` columns."""
    pool = draw_pool(report.allocate(size), source, exclude=exclude, seed=seed)
    for category, target in report.categories.items():
        drawn = [p["prompt"] for p in pool if p["category"] == category]
        target.drawn, target.unique = len(drawn), len(set(drawn))
    return pool


def build_pool(
    shares: Mapping[str, float], source: PromptSource, size: int, *, exclude: Iterable[str] = (), seed: int = 0
) -> list[dict[str, str]]:
    """``size`` prompts with fixed category ``shares`` (a broad corpus's mix, a benchmark's mix), drawn like
    :func:`build_targeted_pool`."""
    return draw_pool(allocate(shares, size), source, exclude=exclude, seed=seed)


def draw_pool(
    counts: Mapping[str, int], source: PromptSource, *, exclude: Iterable[str] = (), seed: int = 0
) -> list[dict[str, str]]:
    """``counts[category]`` prompts of each category from ``source``, none in ``exclude``, shuffled."""
    rng = random.Random(seed)
    exclude = set(exclude)
    pool = []
    for category, count in counts.items():
        drawn = source.draw(category, count, rng, exclude) if count else []
        leaked = sorted(set(drawn) & exclude)
        if leaked:
            raise ValueError(f"the prompt source returned evaluation prompts for {category!r}: {leaked[:3]}")
        pool += [{"prompt": p, "category": category} for p in drawn]
    rng.shuffle(pool)
    return pool


def target(
    evaluation: EvalResult | str | Path,
    source: PromptSource,
    size: int,
    *,
    min_share: float = 0.1,
    categories: Sequence[str] | None = None,
    exclude: Iterable[str] | None = None,
    seed: int = 0,
    output_dir: str | Path | None = None,
) -> tuple[list[dict[str, str]], WeaknessReport]:
    """Weakness report of ``evaluation`` (a result or its folder) and a pool of ``size`` prompts from ``source``.

    ``exclude`` defaults to the evaluation's prompts. ``categories``: those the pool covers (default: the source's
    ``categories`` if it has them, else the evaluation's)."""
    if not isinstance(evaluation, EvalResult):
        evaluation = load_evaluation(evaluation)
    if categories is None:
        categories = list(getattr(source, "categories", None) or evaluation.categories)
    report = weakness_report(evaluation, min_share, categories)
    exclude = {r["prompt"] for r in evaluation.rows} if exclude is None else set(exclude)
    pool = build_targeted_pool(report, source, size, exclude=exclude, seed=seed)
    if output_dir is not None:
        write_pool(pool, report, output_dir)
    return pool, report


def write_pool(pool: list[dict[str, str]], report: WeaknessReport | None, folder: str | Path) -> None:
    """``pool.jsonl`` and, given a report, ``weakness_report.json``/``.md`` in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / POOL_FILE, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in pool)
    if report is not None:
        (folder / "weakness_report.json").write_text(report.to_json() + "\n")
        (folder / "weakness_report.md").write_text(report.to_markdown())


__all__ = ["POOL_FILE", "build_pool", "build_targeted_pool", "draw_pool", "target", "write_pool"]
