"""The reward-weighted multimodal trainer: a `transformers.Trainer` whose loss is per-modality weighted token CE."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any, ClassVar

import torch
from datasets import Dataset
from transformers import AutoProcessor, Trainer, enable_full_determinism, set_seed
from transformers.utils import logging

from ..data.collator import DataCollatorForInterleavedSequences
from ..data.preparation import prepare_dataset
from ..models.base import IGNORE_INDEX, IMAGE, TEXT, unwrap_model
from ..models.registry import get_adapter, load_pretrained
from ..weighting import WeightStats
from .checkpoints import record_checkpoint, verify_checkpoint
from .model_card import describe_training_data, write_model_card
from .rwr_config import RewardWeightedMultimodalConfig

logger = logging.get_logger(__name__)

MODALITIES = ((TEXT, "text"), (IMAGE, "image"))


class RewardWeightedMultimodalTrainer(Trainer):
    """Offline reward-weighted regression for unified text+image models.

    Each sample's text tokens are weighted by a function of its text reward and its image tokens by a function of
    its image reward (weights computed once over the training set, see ``RewardWeightedMultimodalConfig``); the loss
    is ``text_loss_weight * L_text + image_loss_weight * L_image``. With ``reward_weighting="none"`` it is plain SFT.

    Args:
        model: a model instance or a name/path (loaded with the family's class and ``args.model_init_kwargs``).
        args: the config; defaults to ``RewardWeightedMultimodalConfig("<model name>-rwr")``.
        train_dataset / eval_dataset: rows in the documented format (``docs/dataset_format.md``).
        processing_class: the model's processor or tokenizer (loaded with ``AutoProcessor`` from the model if unset).
        peft_config: a ``peft.PeftConfig``; LoRA ``target_modules=None`` uses the adapter's language-model targets.
    """

    _tag_names: ClassVar[list[str]] = ["trl", "trl-unified", "reward-weighted-regression", "text-to-image"]

    def __init__(
        self,
        model: str | torch.nn.Module,
        args: RewardWeightedMultimodalConfig | None = None,
        train_dataset: Dataset | None = None,
        eval_dataset: Dataset | dict[str, Dataset] | None = None,
        processing_class: Any = None,
        data_collator: DataCollatorForInterleavedSequences | None = None,
        peft_config: Any = None,
        **kwargs: Any,
    ):
        model_id = model if isinstance(model, str) else getattr(unwrap_model(model).config, "_name_or_path", None)
        if args is None:
            args = RewardWeightedMultimodalConfig(f"{Path(model_id or 'model').name}-rwr")
        # Seeded before anything random happens here (a LoRA adapter's initial weights), not only in Trainer.__init__:
        # the same seed must give the same run, bit for bit.
        if args.full_determinism:
            enable_full_determinism(args.seed)
        else:
            set_seed(args.seed)
        if isinstance(model, str):
            model = load_pretrained(model, adapter_name=args.model_adapter, **(args.model_init_kwargs or {}))
        if processing_class is None:
            if not model_id:
                raise ValueError("Pass `processing_class`: it cannot be loaded for a model with no name or path.")
            processing_class = AutoProcessor.from_pretrained(model_id)

        self.adapter = get_adapter(model, processing_class, args.model_adapter)
        for module in self.adapter.frozen_modules(model):
            module.requires_grad_(False)
        if peft_config is not None:
            from peft import get_peft_model

            if getattr(peft_config, "target_modules", "unset") is None:
                peft_config.target_modules = self.adapter.lora_target_modules
            model = get_peft_model(model, peft_config)
        if args.gradient_checkpointing and args.gradient_checkpointing_kwargs is None:
            args.gradient_checkpointing_kwargs = {"use_reentrant": False}  # works with frozen embeddings (LoRA)

        collator = data_collator or DataCollatorForInterleavedSequences(
            self.adapter, max_length=args.max_length, truncate_reasoning=args.truncate_reasoning
        )
        self.weight_stats: dict[str, WeightStats] = {}
        self.source_weight_stats: dict[str, dict[str, WeightStats]] = {}  # {source: {modality: stats}}
        self.training_data = describe_training_data(train_dataset, args)  # for the model card, before preparation
        if train_dataset is not None:
            train_dataset, self.weight_stats, self.source_weight_stats = prepare_dataset(
                train_dataset, args=args, collator=collator, model=model
            )
            for name, stats in self.weight_stats.items():
                logger.info(f"{name} weights ({args.reward_weighting}): {stats}")
        if isinstance(eval_dataset, dict):
            eval_dataset = {
                key: prepare_dataset(ds, args=args, collator=collator, model=model, split=f"eval/{key}")[0]
                for key, ds in eval_dataset.items()
            }
        elif eval_dataset is not None:
            eval_dataset = prepare_dataset(eval_dataset, args=args, collator=collator, model=model, split="eval")[0]

        super().__init__(
            model=model,
            args=args,
            data_collator=collator,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            **kwargs,
        )
        # The loss is ours: Trainer must neither count items for the model nor rescale for accumulation.
        self.model_accepts_loss_kwargs = False
        self.loss_is_scaled_for_ga = True
        self._metrics: dict[str, dict[str, list[float]]] = {"train": defaultdict(list), "eval": defaultdict(list)}
        self._pending_weight_logs = bool(self.weight_stats)
        if hasattr(self.model, "add_model_tags"):
            self.model.add_model_tags(self._tag_names)

    # ----- loss ---------------------------------------------------------------------------------------------------
    def _modality_counts(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Normaliser of each modality in one batch: label tokens (``token``) or sequences having any (``sequence``)."""
        targets, modality = batch["labels"][:, 1:], batch["modality"][:, 1:]
        counts = []
        for mod, _ in MODALITIES:
            mask = (targets != IGNORE_INDEX) & (modality == mod)
            counts.append(mask.sum() if self.args.loss_normalization == "token" else mask.any(dim=1).sum())
        return torch.stack(counts).float()

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        """Count each modality's normaliser over the whole optimizer step (all micro-batches, all processes).

        This makes the objective independent of how the step is split into micro-batches and processes.
        """
        batch_samples, _ = super().get_batch_samples(epoch_iterator, num_batches, device)
        if not batch_samples:
            return batch_samples, None
        counts = sum(self._modality_counts(batch).to(device) for batch in batch_samples)
        if self.args.world_size > 1:
            counts = self.accelerator.gather(counts).view(-1, len(MODALITIES)).sum(0)
        return batch_samples, counts

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        args = self.args
        coefficients = {TEXT: args.text_loss_weight, IMAGE: args.image_loss_weight}
        labels = inputs["labels"]
        off = [mod for mod, coefficient in coefficients.items() if coefficient == 0]
        if off:  # a switched-off modality never reaches its head (and so sends it no gradient)
            labels = labels.masked_fill(torch.isin(inputs["modality"], torch.tensor(off, device=labels.device)), IGNORE_INDEX)
        logps = self.adapter.token_logps(model, inputs["input_ids"], inputs["attention_mask"], inputs["modality"], labels)

        if num_items_in_batch is None:  # evaluation, or a caller outside the training loop: this batch alone
            counts, scale = self._modality_counts({"labels": labels, "modality": inputs["modality"]}), 1.0
        else:  # DDP/DeepSpeed average gradients over processes; the counts are already global
            counts, scale = num_items_in_batch.to(logps.device), float(self.accelerator.num_processes)

        targets, target_modality = labels[:, 1:], inputs["modality"][:, 1:]
        mode = "train" if model.training else "eval"
        loss = logps.new_zeros(())
        for mod, name in MODALITIES:
            mask = ((targets != IGNORE_INDEX) & (target_modality == mod)).float()
            present = mask.sum(dim=1) > 0
            if args.loss_normalization == "sequence":
                mask = mask / mask.sum(dim=1, keepdim=True).clamp(min=1)
            nll = -(logps * mask).sum(dim=1)  # [B]: summed (or per-sequence mean) CE of this modality
            weights = inputs[f"{name}_weight"].to(nll)
            weighted = (weights * nll).sum()
            loss = loss + coefficients[mod] * weighted / counts[mod].clamp(min=1) * scale
            if present.any():  # logged per micro-batch, normalised by its own count (comparable across setups)
                local = mask.sum() if args.loss_normalization == "token" else present.sum()
                self._metrics[mode][f"loss/{name}"].append((weighted / local).item())
                self._metrics[mode][f"weights/{name}_mean"].append(weights[present].mean().item())
        return (loss, {"logps": logps}) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    # ----- logging ------------------------------------------------------------------------------------------------
    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        mode = "train" if self.model.training else "eval"
        metrics = {key: sum(values) / len(values) for key, values in self._metrics[mode].items() if values}
        if mode == "eval":
            metrics = {f"eval_{key}": value for key, value in metrics.items()}
        logs = {**logs, **metrics}
        if self._pending_weight_logs and mode == "train":  # once, with the first training log
            for name, stats in self.weight_stats.items():
                for field, value in vars(stats).items():
                    logs[f"weights/{name}_{field}"] = value
            for source, by_modality in self.source_weight_stats.items():
                for name, stats in by_modality.items():
                    for field, value in vars(stats).items():
                        logs[f"weights/{source}/{name}_{field}"] = value
            self._pending_weight_logs = False
        super().log(logs, start_time)
        self._metrics[mode].clear()

    # ----- saving and cards ---------------------------------------------------------------------------------------
    def create_model_card(
        self,
        model_name: str | None = None,
        dataset_name: str | None = None,
        tags: str | list[str] | None = None,
        license: str | None = None,
        finetuned_from: str | None = None,
        dataset: str | None = None,
        **_,
    ):
        """Write the model card (``README.md``) in ``output_dir``; ``push_to_hub(**kwargs)`` passes its kwargs here.

        The base model, training dataset and licence are found by themselves (see ``model_card.write_model_card``);
        ``finetuned_from``, ``dataset_name`` (or transformers' ``dataset``) and ``license`` override them.
        """
        self._write_model_card(
            self.args.output_dir, model_name, dataset_name or dataset, tags, base_model=finetuned_from, license=license
        )

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False):
        """Save the model (or LoRA adapter) and, beside it, our model card (replacing PEFT's generic one)."""
        super().save_model(output_dir, _internal_call)
        self._write_model_card(output_dir or self.args.output_dir)

    def _write_model_card(self, output_dir: str, model_name=None, dataset_name=None, tags=None, **overrides) -> None:
        if not self.is_world_process_zero():
            return
        tags = [tags] if isinstance(tags, str) else list(tags or [])
        name = model_name or (self.args.hub_model_id or Path(output_dir).name).split("/")[-1]
        write_model_card(
            os.path.join(output_dir, "README.md"),
            trainer=self,
            model_name=name,
            dataset_name=dataset_name,
            tags=sorted(set(tags) | set(self._tag_names)),
            **overrides,
        )

    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        self.create_model_card()
        if self.is_world_process_zero():
            record_checkpoint(os.path.join(self._get_output_dir(trial), f"checkpoint-{self.state.global_step}"))

    # ----- resuming -----------------------------------------------------------------------------------------------
    def train(self, resume_from_checkpoint: str | bool | None = None, trial=None, **kwargs):
        """``Trainer.train``, after checking the checkpoint to resume from (files present, checksums, weights)."""
        if resume_from_checkpoint:
            if resume_from_checkpoint is True:
                from transformers.trainer_utils import get_last_checkpoint

                resume_from_checkpoint = get_last_checkpoint(self.args.output_dir)
                if resume_from_checkpoint is None:
                    raise ValueError(f"no checkpoint to resume from in {self.args.output_dir}")
            verify_checkpoint(
                resume_from_checkpoint,
                allow_missing_state=self.args.resume_allow_missing_state,
                optimizer_state=not self.is_deepspeed_enabled,
            )
        return super().train(resume_from_checkpoint=resume_from_checkpoint, trial=trial, **kwargs)
