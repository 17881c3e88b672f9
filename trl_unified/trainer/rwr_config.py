"""Configuration of the reward-weighted multimodal trainer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import TrainingArguments

from ..weighting import NORMALIZATIONS, SCHEMES


@dataclass
class RewardWeightedMultimodalConfig(TrainingArguments):
    r"""
    Configuration for [`RewardWeightedMultimodalTrainer`]: the usual `TrainingArguments` plus how rewards become
    per-sample weights and how the text and image losses are combined.

    The loss is `text_loss_weight * L_text + image_loss_weight * L_image`, where each `L_m` is the cross-entropy of
    that modality's label tokens, each token weighted by its sample's modality weight, normalised per token (or per
    sequence) over the whole optimizer step. Weights come from the reward columns through `reward_weighting`, once,
    over the whole training set (see `trl_unified.weighting`).

    Every field is parsable from the command line and from a `--config` YAML file (`trl.TrlParser`).
    """

    # ----- model -----
    model_init_kwargs: dict[str, Any] | str | None = field(
        default=None,
        metadata={"help": "Keyword arguments for `from_pretrained` when the trainer's `model` is a name or path."},
    )
    model_adapter: str | None = field(
        default=None,
        metadata={"help": "Model family adapter (`janus`, `emu3`, `causal_lm`); detected from the model if unset."},
    )

    # ----- rewards -> weights -----
    text_reward_column: str | None = field(
        default="text_reward",
        metadata={"help": "Column whose reward weights the text (reasoning) tokens; None gives every text weight 1."},
    )
    image_reward_column: str | None = field(
        default="image_reward",
        metadata={"help": "Column whose reward weights the image tokens (may equal text_reward_column); None: weight 1."},
    )
    reward_weighting: str = field(
        default="exp",
        metadata={"help": "How rewards become weights.", "choices": list(SCHEMES)},
    )
    beta: float = field(
        default=1.0, metadata={"help": "Temperature of the `exp` and `softmax` weightings: w = exp((r - baseline)/beta)."}
    )
    max_weight: float | None = field(
        default=20.0, metadata={"help": "Clip every weight at this value after normalisation (None: no clipping)."}
    )
    group_column: str | None = field(
        default="prompt_id",
        metadata={"help": "Column grouping the samples of one prompt (softmax/rank/filter, group normalisation)."},
    )
    source_column: str | None = field(
        default=None,
        metadata={
            "help": "Column naming each row's source dataset (e.g. `targeted`, `broad`, `round1`) when several are "
            "mixed: weights are normalised within each source, groups are taken within sources, and weight "
            "statistics are logged and carded per source. None: one source."
        },
    )
    weight_normalization: str = field(
        default="mean",
        metadata={
            "help": "`mean`: exp weights average 1 over the dataset; `group`: within each prompt group; `none`.",
            "choices": list(NORMALIZATIONS),
        },
    )
    filter_top_fraction: float | None = field(
        default=None, metadata={"help": "`filter` weighting: keep this top fraction of each prompt group (weight 1)."}
    )
    filter_threshold: float | None = field(
        default=None, metadata={"help": "`filter` weighting: keep samples whose reward is at least this (weight 1)."}
    )
    keep_constant_groups: bool = field(
        default=False,
        metadata={
            "help": "Group-relative weightings (softmax, rank, exp with group normalisation, filter with a top "
            "fraction): a group whose rewards are all equal has no contrast and gets weight 0, as in group-relative "
            "RL; True keeps such groups (weight 1 each). Their number is logged either way."
        },
    )
    min_effective_sample_size: float = field(
        default=0.1,
        metadata={
            "help": "Warn when a modality's (or a source's) effective sample size (sum w)^2 / sum w^2, as a fraction "
            "of its rows, is below this: a few samples would carry the loss. 0 turns the warning off."
        },
    )

    # ----- loss -----
    text_loss_weight: float = field(
        default=1.0, metadata={"help": "Coefficient of the text loss (0 turns the text loss off)."}
    )
    image_loss_weight: float = field(
        default=1.0, metadata={"help": "Coefficient of the image loss (0 turns the image loss off)."}
    )
    loss_normalization: str = field(
        default="token",
        metadata={
            "help": "`token`: each modality's weighted token losses are summed and divided by that modality's token "
            "count over the optimizer step (TRL SFT's normalisation); `sequence`: each sequence's mean, averaged over "
            "the sequences that have that modality.",
            "choices": ["token", "sequence"],
        },
    )

    # ----- data -----
    max_length: int | None = field(
        default=1024,
        metadata={"help": "Longest interleaved sequence; longer rows are an error (images are never cut)."},
    )
    truncate_reasoning: bool = field(
        default=False,
        metadata={"help": "Cut the reasoning (never the prompt or the image) of rows longer than max_length."},
    )
    dataset_num_proc: int | None = field(
        default=None, metadata={"help": "Processes for dataset preparation (tokenisation, image encoding)."}
    )

    # ----- TrainingArguments defaults that differ -----
    logging_steps: float = field(default=10, metadata={"help": "Log every X update steps."})
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Kept False: the collator needs the prepared columns."}
    )
    bf16: bool | None = field(
        default=None,
        metadata={"help": "bf16 mixed precision; defaults to True on a CUDA device that supports it, else False."},
    )

    def __post_init__(self):
        if self.bf16 is None:
            self.bf16 = not self.fp16 and not self.use_cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        if self.reward_weighting not in SCHEMES:
            raise ValueError(f"reward_weighting must be one of {SCHEMES}, got {self.reward_weighting!r}")
        if self.weight_normalization not in NORMALIZATIONS:
            raise ValueError(f"weight_normalization must be one of {NORMALIZATIONS}, got {self.weight_normalization!r}")
        if self.loss_normalization not in ("token", "sequence"):
            raise ValueError(f"loss_normalization must be 'token' or 'sequence', got {self.loss_normalization!r}")
        if self.text_loss_weight < 0 or self.image_loss_weight < 0:
            raise ValueError("text_loss_weight and image_loss_weight must be >= 0")
        if self.reward_weighting == "filter" and self.filter_top_fraction is None and self.filter_threshold is None:
            raise ValueError("reward_weighting='filter' needs filter_top_fraction and/or filter_threshold")
        if self.filter_top_fraction is not None and not 0 < self.filter_top_fraction <= 1:
            raise ValueError(f"filter_top_fraction must be in (0, 1], got {self.filter_top_fraction}")
        if not 0 <= self.min_effective_sample_size <= 1:
            raise ValueError(f"min_effective_sample_size is a fraction in [0, 1], got {self.min_effective_sample_size}")
        super().__post_init__()
