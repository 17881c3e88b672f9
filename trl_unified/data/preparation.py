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
from ..weighting import WeightStats, compute_weights, count_constant_groups, is_group_relative
from .collator import DataCollatorForInterleavedSequences, _is_integer

logger = logging.get_logger(__name__)

ROW_INDEX = "row_index"
COLLATOR_COLUMNS = ("prompt_ids", "reasoning_ids", "image_tokens", "text_weight", "image_weight", ROW_INDEX)


def _check_columns(dataset: Dataset, args: Any, split: str) -> None:
    columns = set(dataset.column_names)
    if not {"prompt", "prompt_ids"} & columns:
        raise ValueError(f"The {split} dataset needs a `prompt` or `prompt_ids` column; it has {sorted(columns)}.")
    if args.source_column is not None and args.source_column not in columns:
        raise ValueError(f"The {split} dataset has no source column {args.source_column!r} (source_column).")
    if args.reward_weighting != "none":
        for option in ("text_reward_column", "image_reward_column"):
            column = getattr(args, option)
            if column is not None and column not in columns:
                raise ValueError(
                    f"The {split} dataset has no column {column!r} ({option}); it has {sorted(columns)}. Set {option} "
                    "to an existing column, to None (weight 1), or use reward_weighting='none'."
                )
        if _grouped(args) and args.group_column is not None and args.group_column not in columns:
            raise ValueError(f"The {split} dataset has no group column {args.group_column!r} (group_column).")
        for name in ("text_weight", "image_weight"):
            if name in columns:
                raise ValueError(
                    f"The {split} dataset has a `{name}` column, which reward_weighting={args.reward_weighting!r} "
                    "would replace by weights computed from the rewards. To train on these precomputed weights as they "
                    "are, use reward_weighting='none'; otherwise drop or rename the column."
                )


def _drop_failed_rewards(dataset: Dataset, args: Any, split: str) -> Dataset:
    """``drop_failed_rewards``: drop the rows whose ``reward_failed`` is set or whose used reward is NaN, infinite or
    not a number, with a logged count (otherwise the weighting names the first such row)."""
    if not getattr(args, "drop_failed_rewards", False) or args.reward_weighting == "none":
        return dataset
    columns = [c for c in (args.text_reward_column, args.image_reward_column) if c in dataset.column_names]
    failed = dataset["reward_failed"] if "reward_failed" in dataset.column_names else [False] * len(dataset)
    values = [dataset[c] for c in dict.fromkeys(columns)]
    # None is not a failure: it marks a row without that modality (see `_numbers`)
    bad = [
        i
        for i in range(len(dataset))
        if failed[i]
        or any(v[i] is not None and (not isinstance(v[i], (int, float)) or not math.isfinite(v[i])) for v in values)
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


def _vocab_size(model: Any) -> int | None:
    from ..models.base import unwrap_model

    embeddings = unwrap_model(model).get_input_embeddings() if model is not None else None
    return getattr(embeddings, "num_embeddings", None)


def _grouped(args: Any) -> bool:
    return is_group_relative(args.reward_weighting, args.weight_normalization, args.filter_top_fraction)


def _keys(dataset: Dataset, column: str, rows: np.ndarray, what: str) -> list:
    """Group or source ids; None is refused (it would silently pool unrelated rows)."""
    keys = list(dataset[column])
    for i, key in enumerate(keys):
        if key is None:
            raise ValueError(
                f"row {rows[i]}, column {column!r}: the {what} id is None; every row needs one (None would put "
                f"unrelated rows into one {what})."
            )
    return keys


def _has_image(dataset: Dataset) -> np.ndarray:
    """Rows with an image, as the collator sees them (`image_tokens` if that column exists, else `image`)."""
    column = next((c for c in ("image_tokens", "image") if c in dataset.column_names), None)
    if column is None:
        return np.zeros(len(dataset), dtype=bool)
    return ~dataset.with_format("arrow")[column].is_null().to_numpy(zero_copy_only=False)  # no image decoding


def _has_reasoning(dataset: Dataset) -> np.ndarray:
    n, columns = len(dataset), dataset.column_names
    ids = dataset["reasoning_ids"] if "reasoning_ids" in columns else [None] * n
    text = dataset["reasoning"] if "reasoning" in columns else [None] * n
    return np.array([bool(i) if i is not None else bool(t) for i, t in zip(ids, text)], dtype=bool)


def _numbers(dataset, column, rows, *, required, allowed, needs: str, what: str) -> tuple[np.ndarray, np.ndarray]:
    """A reward or weight column: a finite number where ``required``, None or a number where ``allowed``, ignored
    elsewhere. Returns the values and the rows that have one (the rows that take part in this modality)."""
    values, present = np.full(len(dataset), np.nan), np.zeros(len(dataset), dtype=bool)
    for i, value in enumerate(dataset[column]):
        if not allowed[i] or (value is None and not required[i]):
            continue
        if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
            hint = f" (None marks a row without {needs}; this row has {needs})" if value is None else ""
            if what == "reward":
                hint += " (self-generated rows whose reward failed are marked `reward_failed`: filter them out)"
            raise ValueError(f"row {rows[i]}, column {column!r}: {what} must be a finite number, got {value!r}" + hint)
        values[i], present[i] = value, True
    return values, present


def _settings(args: Any) -> str:
    names = (
        "reward_weighting",
        "beta",
        "weight_normalization",
        "max_weight",
        "filter_top_fraction",
        "filter_threshold",
        "keep_constant_groups",
    )
    return ", ".join(f"{name}={getattr(args, name)!r}" for name in names)


def _check_weights(w: np.ndarray, rows: np.ndarray, modality: str, split: str, args: Any) -> None:
    """Refuse weights that would silently train a broken model (NaN) or nothing at all."""
    bad = np.flatnonzero(~(np.isfinite(w) & (w >= 0)))
    if bad.size:
        listed = ", ".join(f"row {rows[i]}: {w[i]}" for i in bad[:5])
        raise ValueError(
            f"{split}: {bad.size} of {len(w)} {modality} weights are not finite numbers >= 0 ({listed}) with "
            f"{_settings(args)}. Check the weight column, or raise beta, normalise (weight_normalization='mean') or "
            "set max_weight > 0."
        )
    if len(w) and getattr(args, f"{modality}_loss_weight") > 0 and not (w > 0).any():
        raise ValueError(
            f"{split}: all {len(w)} {modality} weights are 0 with {_settings(args)}: the {modality} loss would train "
            f"on nothing. Loosen the filter, set keep_constant_groups=True, or set {modality}_loss_weight=0."
        )


def _modality_weights(dataset, args, modality, rows, groups, sources, has_reasoning, has_image):
    """One modality's weights over the rows that take part in it: (their positions, weights, rewards or None).

    Text: every row has text targets (at least its begin-of-image or EOS), but a row without reasoning may carry a
    None reward, which leaves it out of the text weighting. Image: only the rows with an image take part."""
    everything = np.ones(len(dataset), dtype=bool)
    required, allowed, needs = (
        (has_reasoning, everything, "reasoning") if modality == "text" else (has_image, has_image, "an image")
    )
    reward_column, weight_column = getattr(args, f"{modality}_reward_column"), f"{modality}_weight"
    if args.reward_weighting == "none" and weight_column in dataset.column_names:  # precomputed, used as given
        values, present = _numbers(
            dataset, weight_column, rows, required=required, allowed=allowed, needs=needs, what="weight"
        )
        return np.flatnonzero(present), values[present], None
    if args.reward_weighting == "none" or reward_column is None:
        return np.flatnonzero(allowed), np.ones(int(allowed.sum())), None
    rewards, present = _numbers(
        dataset, reward_column, rows, required=required, allowed=allowed, needs=needs, what="reward"
    )
    idx = np.flatnonzero(present)
    w = compute_weights(
        rewards[idx],
        scheme=args.reward_weighting,
        beta=args.beta,
        groups=_pick(groups, idx),
        sources=_pick(sources, idx),
        normalization=args.weight_normalization,
        max_weight=args.max_weight,
        filter_top_fraction=args.filter_top_fraction,
        filter_threshold=args.filter_threshold,
        keep_constant_groups=args.keep_constant_groups,
    )
    return idx, w, rewards[idx]


def _pick(keys: list | None, idx: np.ndarray) -> list | None:
    return None if keys is None else [keys[i] for i in idx]


def _stats(w, rewards, groups, args, what: str, split: str) -> WeightStats:
    """Statistics of one modality's weights (in one source, or all); warns when the effective sample size is small."""
    constant = count_constant_groups(rewards, groups)[0] if rewards is not None and _grouped(args) else 0
    stats = WeightStats.of(w, constant)
    if stats.rows and stats.ess < args.min_effective_sample_size:
        logger.warning(
            f"{split}: the {what} weights have an effective sample size of {stats.ess:.3g} of their {stats.rows} rows "
            f"({stats.ess * stats.rows:.1f} rows), below min_effective_sample_size={args.min_effective_sample_size}: "
            f"a few samples carry that loss ({_settings(args)})."
        )
    return stats


def add_weights(
    dataset: Dataset, args: Any, split: str = "train"
) -> tuple[Dataset, dict[str, WeightStats], dict[str, dict[str, WeightStats]]]:
    """Add ``text_weight``/``image_weight`` columns computed over the whole dataset (0 where a row lacks that
    modality); returns their statistics overall and per source (``{source: {modality: stats}}``, empty without
    ``source_column``). Non-finite, negative or all-zero weights are errors; a small effective sample size warns."""
    n, columns = len(dataset), dataset.column_names
    rows = np.asarray(dataset[ROW_INDEX]) if ROW_INDEX in columns else np.arange(n)
    sources = _keys(dataset, args.source_column, rows, "source") if args.source_column is not None else None
    use_groups = args.reward_weighting != "none" and _grouped(args) and args.group_column in columns
    groups = _keys(dataset, args.group_column, rows, "group") if use_groups else None
    has_reasoning, has_image = _has_reasoning(dataset), _has_image(dataset)

    stats, by_source = {}, {}
    for modality in ("text", "image"):
        idx, w, rewards = _modality_weights(dataset, args, modality, rows, groups, sources, has_reasoning, has_image)
        _check_weights(w, rows[idx], modality, split, args)
        row_groups, row_sources = _pick(groups, idx), _pick(sources, idx)
        # groups are nested in sources: key them by both for the overall count
        keys = row_groups if row_sources is None else list(zip(row_sources, row_groups or row_sources))
        stats[modality] = _stats(w, rewards, keys, args, modality, split)
        if stats[modality].constant_groups:
            fate = "kept, weight 1 (keep_constant_groups=True)" if args.keep_constant_groups else "weight 0"
            logger.warning(
                f"{split}: {stats[modality].constant_groups} of {count_constant_groups(rewards, keys)[1]} groups have "
                f"equal {modality} rewards (no contrast): {fate}."
            )
        for source in dict.fromkeys(row_sources or []):
            mask = np.array([s == source for s in row_sources], dtype=bool)
            by_source.setdefault(str(source), {})[modality] = _stats(
                w[mask],
                None if rewards is None else rewards[mask],
                _pick(row_groups, np.flatnonzero(mask)),
                args,
                f"{modality} (source {source!r})",
                split,
            )
        full = np.zeros(n)
        full[idx] = w
        if f"{modality}_weight" in dataset.column_names:
            dataset = dataset.remove_columns(f"{modality}_weight")
        dataset = dataset.add_column(f"{modality}_weight", full.tolist())
    return dataset, stats, by_source


def prepare_dataset(
    dataset: Dataset,
    *,
    args: Any,
    collator: DataCollatorForInterleavedSequences,
    model: Any,
    split: str = "train",
) -> tuple[Dataset, dict[str, WeightStats], dict[str, dict[str, WeightStats]]]:
    """Validate, weight, tokenize and check every row; returns the prepared dataset and the weight statistics
    (overall, and per source)."""
    adapter = collator.adapter
    if len(dataset) == 0:
        raise ValueError(f"The {split} dataset has no rows.")
    _check_columns(dataset, args, split)
    if ROW_INDEX not in dataset.column_names:
        dataset = dataset.add_column(ROW_INDEX, list(range(len(dataset))))
    dataset = _drop_failed_rewards(dataset, args, split)
    dataset, stats, source_stats = add_weights(dataset, args, split)

    # A row's weight is 0 in a modality it lacks, so this drops the rows with weight 0 in every modality they have.
    # (The collator also keeps a weight-0 modality of a kept row out of the loss and of its normaliser.)
    dead = [i for i, (t, m) in enumerate(zip(dataset["text_weight"], dataset["image_weight"])) if t == 0 and m == 0]
    if dead:
        logger.warning(
            f"{split}: dropping {len(dead)} of {len(dataset)} rows whose weights are 0 in every modality they have "
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
                        f"row {row[ROW_INDEX]}, column 'prompt': expected text (or `prompt_ids`), "
                        f"got {row.get('prompt')!r}"
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

        # ZeRO-3 with zero3_init_flag partitions the image tokenizer at load time: gather it for the encoding (every
        # process prepares its own copy of the dataset, so every process takes part in the gather).
        with gathered_parameters(adapter.frozen_modules(model)):
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
    return dataset.select_columns([c for c in COLLATOR_COLUMNS if c in dataset.column_names]), stats, source_stats
