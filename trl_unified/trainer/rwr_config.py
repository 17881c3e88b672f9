"""Configuration of the reward-weighted multimodal trainer."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import TrainingArguments

from ..weighting import NORMALIZATIONS, SCHEMES


@dataclass
class RewardWeightedMultimodalConfig(TrainingArguments):
    r"""
    Configuration class for the [`RewardWeightedMultimodalTrainer`].

    This class holds only the parameters specific to reward-weighted multimodal training; for the others see
    [`~transformers.TrainingArguments`]. Defaults that differ from `TrainingArguments` are listed last. Every field is
    parsable from the command line and from a `--config` YAML file (`trl.TrlParser`), and every value is checked here,
    in `__post_init__`, so that a bad one fails before any model is loaded.

    The loss is `text_loss_weight * L_text + image_loss_weight * L_image`, where each `L_m` is the cross-entropy of
    that modality's label tokens, each token weighted by its sample's modality weight, normalised per token (or per
    sequence) over the whole optimizer step. Weights come from the reward columns through `reward_weighting`, once,
    over the whole training set (see `trl_unified.weighting`).

    Parameters:
        > Parameters that control the model

        model_init_kwargs (`dict[str, Any]` or `str`, *optional*):
            Keyword arguments for `from_pretrained` when the trainer's `model` is a name or path. On the command line,
            a JSON string (`'{"dtype": "bfloat16"}'`), parsed here.
        model_adapter (`str`, *optional*):
            Model family adapter (`janus`, `emu3`, `causal_lm`); detected from the model if unset.

        > Parameters that control how rewards become weights

        text_reward_column (`str`, *optional*, defaults to `"text_reward"`):
            Column whose reward weights the text (reasoning) tokens; `None` gives every text weight 1.
        image_reward_column (`str`, *optional*, defaults to `"image_reward"`):
            Column whose reward weights the image tokens; `None` gives every image weight 1.
        reward_weighting (`str`, *optional*, defaults to `"exp"`):
            `exp`, `softmax`, `rank`, `filter` or `none` (see `trl_unified.weighting`).
        beta (`float`, *optional*, defaults to `1.0`):
            Temperature of the `exp` and `softmax` weightings (finite, > 0).
        max_weight (`float`, *optional*, defaults to `20.0`):
            Clip every weight at this value after normalisation (finite, > 0; `None`: no clipping).
        group_column (`str`, *optional*, defaults to `"prompt_id"`):
            Column grouping the samples of one prompt.
        source_column (`str`, *optional*):
            Column naming each row's source dataset when several are mixed (weights normalised within each source).
        weight_normalization (`str`, *optional*, defaults to `"mean"`):
            `mean`, `group` or `none`.
        filter_top_fraction (`float`, *optional*):
            `filter` weighting: keep this top fraction of each group (in (0, 1]).
        filter_threshold (`float`, *optional*):
            `filter` weighting: keep samples whose reward is at least this (finite).
        keep_constant_groups (`bool`, *optional*, defaults to `False`):
            Group-relative weightings: keep a group whose rewards are all equal (weight 1 each) instead of weight 0.
        min_effective_sample_size (`float`, *optional*, defaults to `0.1`):
            Warn when a modality's effective sample size, as a fraction of its rows, is below this (in [0, 1]).
        drop_failed_rewards (`bool`, *optional*, defaults to `False`):
            Drop rows whose `reward_failed` is set or whose used reward is missing or not finite (logged count);
            otherwise such a row is an error naming it.

        > Parameters that control the loss

        text_loss_weight (`float`, *optional*, defaults to `1.0`):
            Coefficient of the text loss (finite, >= 0; 0 turns it off).
        image_loss_weight (`float`, *optional*, defaults to `1.0`):
            Coefficient of the image loss (finite, >= 0; not both 0).
        loss_normalization (`str`, *optional*, defaults to `"token"`):
            `token` or `sequence`.

        > Parameters that control the data

        max_length (`int`, *optional*, defaults to `1024`):
            Longest interleaved sequence (>= 1); longer rows are an error unless `truncate_reasoning`.
        truncate_reasoning (`bool`, *optional*, defaults to `False`):
            Cut the reasoning (never the prompt or the image) of rows longer than `max_length`.
        dataset_num_proc (`int`, *optional*):
            Processes for dataset preparation (>= 1).

        > Parameters that control resuming

        resume_allow_missing_state (`bool`, *optional*, defaults to `False`):
            Resume from a checkpoint that lacks its optimizer or scheduler state (they then start afresh); otherwise
            that is an error, as is any checkpoint file that does not match the checksum recorded when it was saved.

        > Parameters whose defaults differ from `TrainingArguments`

        logging_steps (`float`, *optional*, defaults to `10`), remove_unused_columns (`bool`, defaults to `False`:
        the collator needs the prepared columns), bf16 (`bool`, *optional*: True on a CUDA device that supports it).
    """

    _VALID_DICT_FIELDS = TrainingArguments._VALID_DICT_FIELDS + ["model_init_kwargs"]

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
        metadata={
            "help": "Column whose reward weights the image tokens (may equal text_reward_column); None: weight 1."
        },
    )
    reward_weighting: str = field(
        default="exp",
        metadata={"help": "How rewards become weights.", "choices": list(SCHEMES)},
    )
    beta: float = field(
        default=1.0,
        metadata={"help": "Temperature of the `exp` and `softmax` weightings: w = exp((r - baseline)/beta)."},
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

    drop_failed_rewards: bool = field(
        default=False,
        metadata={
            "help": "Drop rows whose `reward_failed` is set or whose used reward column is missing or not finite "
            "(the count is logged); otherwise such a row is an error naming it."
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

    # ----- resuming -----
    resume_allow_missing_state: bool = field(
        default=False,
        metadata={
            "help": "Resume from a checkpoint without its optimizer/scheduler state (they start afresh); otherwise "
            "an error, as is a checkpoint file that does not match the checksum recorded when it was saved."
        },
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
            self.bf16 = (
                not self.fp16 and not self.use_cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
            )
        self._check()
        super().__post_init__()
        if self.model_init_kwargs is not None and not isinstance(self.model_init_kwargs, dict):
            raise ValueError(
                f"model_init_kwargs must be a dict or a JSON object string, got {self.model_init_kwargs!r}"
            )

    def _check(self) -> None:
        """Every user-input check of this config's own fields (TrainingArguments checks its own)."""

        def finite(name: str, low: float | None = None, *, strict: bool = False, optional: bool = False) -> None:
            value = getattr(self, name)
            if value is None and optional:
                return
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
            if low is not None and (value <= low if strict else value < low):
                raise ValueError(f"{name} must be {'>' if strict else '>='} {low}, got {value!r}")

        def choice(name: str, options) -> None:
            if getattr(self, name) not in options:
                raise ValueError(f"{name} must be one of {list(options)}, got {getattr(self, name)!r}")

        choice("reward_weighting", SCHEMES)
        choice("weight_normalization", NORMALIZATIONS)
        choice("loss_normalization", ("token", "sequence"))
        finite("beta", 0, strict=True)
        finite("max_weight", 0, strict=True, optional=True)
        finite("filter_threshold", optional=True)
        finite("text_loss_weight", 0)
        finite("image_loss_weight", 0)
        if self.text_loss_weight == 0 and self.image_loss_weight == 0:
            raise ValueError("text_loss_weight and image_loss_weight are both 0: there would be nothing to train")
        if self.filter_top_fraction is not None:
            finite("filter_top_fraction")
            if not 0 < self.filter_top_fraction <= 1:
                raise ValueError(f"filter_top_fraction must be in (0, 1], got {self.filter_top_fraction}")
        if self.reward_weighting == "filter" and self.filter_top_fraction is None and self.filter_threshold is None:
            raise ValueError("reward_weighting='filter' needs filter_top_fraction and/or filter_threshold")
        for name in ("max_length", "dataset_num_proc"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer (or unset), got {value!r}")
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        finite("learning_rate", 0)
        finite("num_train_epochs", 0)
        for name in ("text_reward_column", "image_reward_column", "group_column", "source_column"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"{name} must be a column name (or None), got {value!r}")
        finite("min_effective_sample_size", 0)
        if self.min_effective_sample_size > 1:
            raise ValueError(f"min_effective_sample_size is a fraction in [0, 1], got {self.min_effective_sample_size}")
