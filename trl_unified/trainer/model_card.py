"""The model card written beside every save and push: what was trained, from which model, on which data and rewards,
with which weighting and settings, how to use it, and what to cite.

Hub metadata (``base_model``, ``datasets``, ``library_name``, ``pipeline_tag``, ``license``, ``tags``) is built with
``huggingface_hub.ModelCardData``; the text is rendered from ``templates/rwr_model_card.md``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from ..cards import (
    SOURCE_STUDY,
    SOURCE_STUDY_BIBTEX,
    TRL_BIBTEX,
    as_repo_id,
    card_license,
    dataset_origin,
    hub_id_of,
    model_name_or_path,
    quick_start_code,
    reward_means,
)
from ..versions import package_versions

TEMPLATE = Path(__file__).resolve().parent.parent / "templates" / "rwr_model_card.md"
DEFAULT_PROMPT = "a red square above two blue dots"


def describe_training_data(dataset: Any, args: Any) -> dict[str, Any]:
    """What the card says about the training set, read before the trainer prepares it: where it came from, its size,
    an example prompt and the mean of each reward column (the model's own rewards before training, for
    self-generated data)."""
    if dataset is None or not hasattr(dataset, "__len__"):  # none, or an IterableDataset: nothing to count or read
        return {"origin": dataset_origin(dataset)} if dataset is not None else {}
    columns = {"text": args.text_reward_column, "image": args.image_reward_column}
    has_prompt = len(dataset) and "prompt" in dataset.column_names
    prompt = dataset.select_columns(["prompt"])[0]["prompt"] if has_prompt else None
    return {
        "origin": dataset_origin(dataset),
        "num_rows": len(dataset),
        "prompt": prompt if isinstance(prompt, str) else None,
        "reward_means": reward_means(dataset, columns),
    }


def _dataset_reference(dataset_name: str | None, training_data: dict[str, Any]) -> dict[str, Any]:
    """The training set as the card names it: ``hub_id`` (metadata and link), ``path``, ``run`` (self-generated)."""
    origin = dict(training_data.get("origin") or {})
    if dataset_name:  # given by the caller (e.g. `trl-unified train --dataset_name`): a Hub id or a local path
        if as_repo_id(dataset_name):
            origin["hub_id"] = dataset_name
        elif os.path.exists(dataset_name) and not origin.get("path"):
            origin["path"] = dataset_name
    return origin


def write_model_card(
    path: str,
    *,
    trainer: Any,
    model_name: str,
    dataset_name: str | None,
    tags: list[str],
    base_model: str | None = None,
    license: str | None = None,
) -> ModelCard:
    """Render ``templates/rwr_model_card.md`` for ``trainer`` and save it at ``path``.

    ``base_model``/``license`` override what is found: the Hub id the model was loaded from (or the repo of the
    Hub-cache folder it was loaded from) and the licence in that model's card.
    """
    args = trainer.args
    name_or_path = model_name_or_path(trainer.model, trainer.processing_class)
    base_model = base_model or hub_id_of(name_or_path)
    licence = {"license": license} if license else card_license(name_or_path) or card_license(base_model)
    peft_config = getattr(trainer.model, "peft_config", None)
    peft = next(iter(peft_config.values())) if peft_config else None
    training_data = getattr(trainer, "training_data", None) or {}
    data = _dataset_reference(dataset_name, training_data)
    card_data = ModelCardData(
        base_model=base_model,
        datasets=[data["hub_id"]] if data.get("hub_id") else None,
        library_name="peft" if peft else "transformers",
        pipeline_tag=trainer.adapter.pipeline_tag,
        tags=tags,
        **licence,
    )
    repo = args.hub_model_id or str(Path(path).resolve().parent)
    quick_start = None
    if peft is not None:
        quick_start = quick_start_code(
            base_model or name_or_path or "<base model>", repo, training_data.get("prompt") or DEFAULT_PROMPT
        )
    card = ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE),
        model_name=model_name,
        base_model=base_model,
        name_or_path=name_or_path,
        data=data,
        training_data=training_data,
        paper_id=SOURCE_STUDY,
        is_adapter=peft is not None,
        peft_type=peft.peft_type.value if peft is not None else None,
        lora=_lora_settings(peft),
        quick_start=quick_start,
        family=trainer.adapter.family,
        licence=licence,
        licence_source="as given when the card was written" if license else "as in the base model's card",
        weight_stats=trainer.weight_stats,
        effective_batch_size=args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size,
        optimizer=_optimizer(args),
        schedule=_schedule(args),
        precision="bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
        global_step=trainer.state.global_step,
        versions=package_versions(),
        # issue #10: per-source weight statistics (empty unless `source_column` is set)
        source_column=args.source_column,
        source_weight_stats=getattr(trainer, "source_weight_stats", {}),
        study_bibtex=SOURCE_STUDY_BIBTEX,
        trl_bibtex=TRL_BIBTEX,
        **{
            key: getattr(args, key)
            for key in (
                "text_reward_column",
                "image_reward_column",
                "reward_weighting",
                "beta",
                "weight_normalization",
                "max_weight",
                "group_column",
                "text_loss_weight",
                "image_loss_weight",
                "loss_normalization",
                "learning_rate",
                "num_train_epochs",
                "max_steps",
                "seed",
                "world_size",
                "gradient_accumulation_steps",
            )
        },
    )
    card.save(path)
    return card


def _lora_settings(peft: Any) -> dict[str, Any] | None:
    if peft is None or not hasattr(peft, "lora_alpha"):
        return None
    targets = peft.target_modules
    return {
        "r": peft.r,
        "alpha": peft.lora_alpha,
        "dropout": peft.lora_dropout,
        "targets": targets if isinstance(targets, str) else sorted(targets or []),
        "modules_to_save": sorted(peft.modules_to_save or []),
    }


def _optimizer(args: Any) -> str:
    optim = getattr(args.optim, "value", args.optim)
    text = f"`{optim}` (betas {args.adam_beta1}, {args.adam_beta2}, eps {args.adam_epsilon:g})"
    return text + f", weight decay {args.weight_decay}, gradient clipping {args.max_grad_norm}"


def _schedule(args: Any) -> str:
    schedule = getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)
    warmup = args.warmup_steps
    if warmup:  # transformers: a float below 1 is a fraction of the training steps
        return f"`{schedule}`, warmup {f'{warmup:g} of the steps' if 0 < warmup < 1 else f'{int(warmup)} steps'}"
    return f"`{schedule}`, no warmup"
