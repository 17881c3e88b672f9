"""Dataset preparation: validate rows, turn rewards into weights, tokenize, encode images. Runs once, up front.

The row format is documented in ``docs/dataset_format.md``. Every error names the row (its index in the dataset the
user passed) and the column at fault, and rows are only ever dropped with a logged count and reason.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from datasets import Dataset
from transformers.utils import logging

from ..weighting import WeightStats, compute_weights
from .collator import DataCollatorForInterleavedSequences, _is_integer

logger = logging.get_logger(__name__)

ROW_INDEX = "row_index"
COLLATOR_COLUMNS = ("prompt_ids", "reasoning_ids", "image_tokens", "text_weight", "image_weight", ROW_INDEX)


def _check_columns(dataset: Dataset, args: Any, split: str) -> None:
    columns = set(dataset.column_names)
    if not {"prompt", "prompt_ids"} & columns:
        raise ValueError(f"The {split} dataset needs a `prompt` or `prompt_ids` column; it has {sorted(columns)}.")
    if args.reward_weighting != "none":
        for option in ("text_reward_column", "image_reward_column"):
            column = getattr(args, option)
            if column is not None and column not in columns:
                raise ValueError(
                    f"The {split} dataset has no column {column!r} ({option}); it has {sorted(columns)}. Set {option} "
                    "to an existing column, to None (weight 1), or use reward_weighting='none'."
                )
        if args.reward_weighting in ("softmax", "rank", "filter") or args.weight_normalization == "group":
            if args.group_column is not None and args.group_column not in columns:
                raise ValueError(f"The {split} dataset has no group column {args.group_column!r} (group_column).")


def _drop_failed_rewards(dataset: Dataset, args: Any, split: str) -> Dataset:
    """``drop_failed_rewards``: drop the rows whose ``reward_failed`` is set or whose used reward is not a finite
    number, with a logged count (otherwise :func:`_rewards` names the first such row)."""
    if not getattr(args, "drop_failed_rewards", False) or args.reward_weighting == "none":
        return dataset
    columns = [c for c in (args.text_reward_column, args.image_reward_column) if c in dataset.column_names]
    failed = dataset["reward_failed"] if "reward_failed" in dataset.column_names else [False] * len(dataset)
    values = [dataset[c] for c in dict.fromkeys(columns)]
    bad = [
        i
        for i in range(len(dataset))
        if failed[i]
        or any(v[i] is None or not isinstance(v[i], (int, float)) or not math.isfinite(v[i]) for v in values)
    ]
    if bad:
        logger.warning(
            f"{split}: dropping {len(bad)} of {len(dataset)} rows whose reward failed (drop_failed_rewards); "
            f"first rows: {bad[:5]}."
        )
        dataset = dataset.select(sorted(set(range(len(dataset))) - set(bad)))
        if len(dataset) == 0:
            raise ValueError(f"The {split} dataset has no row left: the reward of every row failed.")
    return dataset


def _check_ids(dataset: Dataset, vocab_size: int | None, split: str) -> None:
    """Every token id is an integer inside the model's vocabulary, every image code an integer (row and column named),
    so a bad row fails here rather than with an ``IndexError`` mid-training."""
    columns = [c for c in ("prompt_ids", "reasoning_ids", "image_tokens", ROW_INDEX) if c in dataset.column_names]
    for row in dataset.select_columns(columns):
        index = row[ROW_INDEX]
        for column in ("prompt_ids", "reasoning_ids", "image_tokens"):
            values = row.get(column)
            if values is None:
                continue
            if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
                raise ValueError(f"row {index}, column {column!r}: expected a list of integers, got {values!r}")
            for value in values:
                if not _is_integer(value):
                    raise ValueError(f"row {index}, column {column!r}: {value!r} is not an integer")
                if column != "image_tokens" and vocab_size is not None and not 0 <= value < vocab_size:
                    raise ValueError(
                        f"row {index}, column {column!r}: token id {value!r} is outside the model's vocabulary "
                        f"[0, {vocab_size})"
                    )


def _check_weights(dataset: Dataset, args: Any, split: str) -> None:
    """Every weight finite and >= 0: a non-finite one would make a NaN model (extreme rewards with a tiny beta)."""
    for modality in ("text", "image"):
        weights = np.asarray(dataset[f"{modality}_weight"], dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(weights) | (weights < 0))
        if len(bad):
            row = dataset[int(bad[0])][ROW_INDEX]
            raise ValueError(
                f"{split}: {len(bad)} {modality} weights are not finite numbers >= 0 (first: row {row}, weight "
                f"{weights[bad[0]]!r}) with reward_weighting={args.reward_weighting!r}, beta={args.beta!r}; the rewards "
                f"are too far apart for this beta (raise beta, or rescale the rewards)."
            )


def _vocab_size(model: Any) -> int | None:
    from ..models.base import unwrap_model

    embeddings = unwrap_model(model).get_input_embeddings() if model is not None else None
    return getattr(embeddings, "num_embeddings", None)


def _rewards(dataset: Dataset, column: str) -> np.ndarray:
    values = dataset[column]
    for i, value in enumerate(values):
        if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
            hint = " (self-generated rows whose reward failed are marked `reward_failed`: filter them out)"
            raise ValueError(f"row {i}, column {column!r}: reward must be a finite number, got {value!r}" + hint)
    return np.asarray(values, dtype=np.float64)


def add_weights(dataset: Dataset, args: Any) -> tuple[Dataset, dict[str, WeightStats]]:
    """Add ``text_weight``/``image_weight`` columns computed over the whole dataset; returns their statistics."""
    groups = dataset[args.group_column] if args.group_column in dataset.column_names else None
    weights, stats = {}, {}
    for modality, column in (("text", args.text_reward_column), ("image", args.image_reward_column)):
        if args.reward_weighting == "none" or column is None:
            w = np.ones(len(dataset))
        else:
            w = compute_weights(
                _rewards(dataset, column),
                scheme=args.reward_weighting,
                beta=args.beta,
                groups=groups,
                normalization=args.weight_normalization,
                max_weight=args.max_weight,
                filter_top_fraction=args.filter_top_fraction,
                filter_threshold=args.filter_threshold,
            )
        weights[modality] = w
        stats[modality] = WeightStats.of(w)
    for modality, w in weights.items():
        name = f"{modality}_weight"
        if name in dataset.column_names:
            dataset = dataset.remove_columns(name)
        dataset = dataset.add_column(name, w.tolist())
    return dataset, stats


def prepare_dataset(
    dataset: Dataset,
    *,
    args: Any,
    collator: DataCollatorForInterleavedSequences,
    model: Any,
    split: str = "train",
) -> tuple[Dataset, dict[str, WeightStats]]:
    """Validate, weight, tokenize and check every row; returns the prepared dataset and the weight statistics."""
    adapter = collator.adapter
    if len(dataset) == 0:
        raise ValueError(f"The {split} dataset has no rows.")
    _check_columns(dataset, args, split)
    if ROW_INDEX not in dataset.column_names:
        dataset = dataset.add_column(ROW_INDEX, list(range(len(dataset))))
    dataset = _drop_failed_rewards(dataset, args, split)
    dataset, stats = add_weights(dataset, args)
    _check_weights(dataset, args, split)

    dead = [i for i, (t, m) in enumerate(zip(dataset["text_weight"], dataset["image_weight"])) if t == 0 and m == 0]
    if dead:
        logger.warning(
            f"{split}: dropping {len(dead)} of {len(dataset)} rows whose text and image weights are both 0 "
            f"({args.reward_weighting} weighting); they would add nothing to the loss."
        )
        keep = sorted(set(range(len(dataset))) - set(dead))
        dataset = dataset.select(keep)
        if len(dataset) == 0:
            raise ValueError(f"The {split} dataset has no row left: every row's weights are 0.")

    columns = set(dataset.column_names)
    # A row without ids (the column absent, or None in this row) is tokenized from its text.
    missing_prompt = "prompt_ids" not in columns or None in dataset["prompt_ids"]
    missing_reasoning = "reasoning_ids" not in columns or None in dataset["reasoning_ids"]
    if missing_prompt or missing_reasoning:

        def tokenize(row):
            out = {"prompt_ids": row.get("prompt_ids"), "reasoning_ids": row.get("reasoning_ids")}
            if row.get("prompt_ids") is None:
                if not isinstance(row.get("prompt"), str):
                    raise ValueError(
                        f"row {row[ROW_INDEX]}, column 'prompt': expected text (or `prompt_ids`), got {row.get('prompt')!r}"
                    )
                out["prompt_ids"] = adapter.tokenize_prompt(row["prompt"])
            if row.get("reasoning_ids") is None:
                reasoning = row.get("reasoning")
                if reasoning is not None and not isinstance(reasoning, str):
                    raise ValueError(f"row {row[ROW_INDEX]}, column 'reasoning': expected text, got {reasoning!r}")
                out["reasoning_ids"] = adapter.tokenize_text(reasoning or "")
            return out

        dataset = dataset.map(tokenize, num_proc=args.dataset_num_proc, desc=f"Tokenizing {split} dataset")

    if "image_tokens" not in columns and "image" in columns:

        def encode(batch):
            codes = [None] * len(batch["image"])
            present = [i for i, image in enumerate(batch["image"]) if image is not None]
            if present:
                encoded = adapter.encode_images(model, [batch["image"][i] for i in present])
                for i, row_codes in zip(present, encoded.tolist()):
                    codes[i] = row_codes
            return {"image_tokens": codes}

        dataset = dataset.map(encode, batched=True, batch_size=16, desc=f"Encoding {split} images")

    _check_ids(dataset, _vocab_size(model), split)
    # The collator's own check, run once over every row now rather than mid-training.
    image_tail = len(adapter.image_layout()) + 1
    truncated = 0
    for row in dataset.select_columns(
        [c for c in ("prompt_ids", "reasoning_ids", "image_tokens", ROW_INDEX) if c in dataset.column_names]
    ):
        tail = 1 if row.get("image_tokens") is None else image_tail
        full = len(row["prompt_ids"]) + len(row.get("reasoning_ids") or []) + tail
        truncated += len(collator.encode_row(row, row[ROW_INDEX])) < full
    if truncated:
        logger.warning(f"{split}: the reasoning of {truncated} rows was truncated to fit max_length={args.max_length}.")
    # Only what the collator reads travels to the dataloader (no image decoding per step).
    return dataset.select_columns([c for c in COLLATOR_COLUMNS if c in dataset.column_names]), stats
