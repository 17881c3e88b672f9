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

from ..models.sharding import gathered_parameters
from ..weighting import WeightStats, compute_weights
from .collator import DataCollatorForInterleavedSequences

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
    _check_columns(dataset, args, split)
    if ROW_INDEX not in dataset.column_names:
        dataset = dataset.add_column(ROW_INDEX, list(range(len(dataset))))
    dataset, stats = add_weights(dataset, args)

    dead = [i for i, (t, m) in enumerate(zip(dataset["text_weight"], dataset["image_weight"])) if t == 0 and m == 0]
    if dead:
        logger.warning(
            f"{split}: dropping {len(dead)} of {len(dataset)} rows whose text and image weights are both 0 "
            f"({args.reward_weighting} weighting); they would add nothing to the loss."
        )
        keep = sorted(set(range(len(dataset))) - set(dead))
        dataset = dataset.select(keep)

    columns = set(dataset.column_names)
    if "prompt_ids" not in columns or ("reasoning_ids" not in columns and "reasoning" in columns):

        def tokenize(row):
            out = {}
            if "prompt_ids" not in columns:
                out["prompt_ids"] = adapter.tokenize_prompt(row["prompt"])
            if "reasoning_ids" not in columns:
                out["reasoning_ids"] = adapter.tokenize_text(row.get("reasoning") or "")
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

        # ZeRO-3 with zero3_init_flag partitions the image tokenizer at load time: gather it for the encoding (every
        # process prepares its own copy of the dataset, so every process takes part in the gather).
        with gathered_parameters(adapter.frozen_modules(model)):
            dataset = dataset.map(encode, batched=True, batch_size=16, desc=f"Encoding {split} images")

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
