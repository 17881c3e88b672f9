"""The model card written beside every save and push: what was trained, on which rewards, with which weighting."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from ..models.base import unwrap_model
from ..versions import package_versions

SOURCE_STUDY = "2601.04339"
TEMPLATE = Path(__file__).resolve().parent.parent / "templates" / "rwr_model_card.md"


def write_model_card(path: str, *, trainer: Any, model_name: str, dataset_name: str | None, tags: list[str]) -> ModelCard:
    """Render ``templates/rwr_model_card.md`` for ``trainer`` and save it at ``path``."""
    args = trainer.args
    core = unwrap_model(trainer.model)
    name_or_path = getattr(core.config, "_name_or_path", None) or None
    base_model = name_or_path if name_or_path and not os.path.isdir(name_or_path) else None
    peft_config = getattr(trainer.model, "peft_config", None)
    card_data = ModelCardData(
        base_model=base_model,
        library_name="peft" if peft_config else "transformers",
        tags=tags,
        datasets=[dataset_name] if dataset_name else None,
    )
    card = ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE),
        model_name=model_name,
        base_model=base_model,
        dataset_name=dataset_name,
        paper_id=SOURCE_STUDY,
        is_adapter=bool(peft_config),
        peft_type=next(iter(peft_config.values())).peft_type.value if peft_config else None,
        family=trainer.adapter.family,
        weight_stats=trainer.weight_stats,
        effective_batch_size=args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size,
        versions=package_versions(),
        # issue #10: per-source weight statistics (empty unless `source_column` is set)
        source_column=args.source_column,
        source_weight_stats=getattr(trainer, "source_weight_stats", {}),
        **{
            key: getattr(args, key)
            for key in (
                "text_reward_column", "image_reward_column", "reward_weighting", "beta", "weight_normalization",
                "max_weight", "group_column", "text_loss_weight", "image_loss_weight", "loss_normalization",
                "learning_rate", "num_train_epochs",
            )
        },
    )
    card.save(path)
    return card
