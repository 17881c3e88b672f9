"""Send sample tables and images to the reporters a user has (``report_to``), as TRL logs its completions.

:func:`report_samples` is the one hook: evaluation calls it with its rows, the shapes demo after self-generation,
and a training script with :func:`report_samples_to_trainer`. It delivers to

* Weights & Biases, when ``"wandb"`` is in ``report_to`` (or ``"all"``), wandb is installed and a run is active: one
  ``wandb.Table`` (prompt, category, reasoning, image, score, correct, switched, rewards) logged under ``<name>``;
* every object in ``callbacks`` (e.g. ``trainer.callback_handler.callbacks``) that has a method
  ``on_samples(name=..., rows=..., images=..., step=...)``: any other reporter plugs in there.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger(__name__)

TABLE_COLUMNS = ("prompt", "category", "reasoning", "score", "correct", "switched")


def _reporters(report_to: str | Sequence[str] | None) -> set[str]:
    if report_to is None:
        return set()
    names = {report_to} if isinstance(report_to, str) else set(report_to)
    if "all" in names:
        names |= {"wandb"}
    return names - {"none"}


def sample_table(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Columns and values of the samples table: :data:`TABLE_COLUMNS` then one column per reward."""
    reward_columns = list(dict.fromkeys(k for r in rows for k in r.get("rewards", {})))
    columns = [*TABLE_COLUMNS, *reward_columns]
    data = [[r.get(c) for c in TABLE_COLUMNS] + [r.get("rewards", {}).get(k) for k in reward_columns] for r in rows]
    return columns, data


def report_samples(
    name: str,
    rows: Sequence[dict[str, Any]],
    images: Sequence[Any] = (),
    *,
    report_to: str | Sequence[str] | None = None,
    callbacks: Sequence[Any] = (),
    step: int | None = None,
    max_rows: int = 512,
) -> list[str]:
    """Log the first ``max_rows`` samples (rows as :func:`~trl_unified.evaluation.evaluate_model` makes them, images
    aligned) to the reporters; returns the names of those that received them."""
    rows, images = list(rows)[:max_rows], list(images)[:max_rows]
    delivered = []
    for callback in callbacks:
        hook = getattr(callback, "on_samples", None)
        if callable(hook):
            hook(name=name, rows=rows, images=images, step=step)
            delivered.append(type(callback).__name__)
    if "wandb" in _reporters(report_to):
        try:
            import wandb
        except ImportError:
            logger.warning("report_to includes wandb but wandb is not installed: samples not logged there")
        else:
            if wandb.run is not None:
                columns, data = sample_table(rows)
                columns.insert(3, "image")
                for values, image in zip(data, images or [None] * len(data)):
                    values.insert(3, wandb.Image(image) if image is not None else None)
                wandb.log({name: wandb.Table(columns=columns, data=data)}, step=step)
                delivered.append("wandb")
    return delivered


def report_samples_to_trainer(trainer, name: str, rows: Sequence[dict], images: Sequence[Any] = ()) -> list[str]:
    """:func:`report_samples` to a ``transformers.Trainer``'s reporters and callbacks, at its current step."""
    return report_samples(
        name,
        rows,
        images,
        report_to=trainer.args.report_to,
        callbacks=trainer.callback_handler.callbacks,
        step=trainer.state.global_step,
    )


def dataset_rows(dataset, limit: int = 512) -> tuple[list[dict], list[Any]]:
    """Rows and images of a self-generated dataset (``trl_unified.generation.self_generate``) in the table's form."""
    part = dataset.select(range(min(limit, len(dataset))))
    reward_columns = [c for c in part.column_names if c.startswith(("text/", "image/"))]
    rows = []
    for row in part:
        rows.append(
            {
                "prompt": row["prompt"],
                "category": row.get("category"),
                "reasoning": row["reasoning"],
                "score": row["image_reward"],
                "correct": None,
                "switched": row["switched"],
                "rewards": {c: row[c] for c in reward_columns},
            }
        )
    return rows, list(part["image"])


__all__ = ["TABLE_COLUMNS", "dataset_rows", "report_samples", "report_samples_to_trainer", "sample_table"]
