"""The reward-weighted multimodal trainer: a `transformers.Trainer` whose loss is per-modality weighted token CE."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import torch
from datasets import Dataset
from transformers import AutoProcessor, Trainer, enable_full_determinism, set_seed
from transformers.utils import logging

from ..data.collator import DataCollatorForInterleavedSequences
from ..data.preparation import prepare_dataset
from ..models.base import IGNORE_INDEX, IMAGE, TEXT, install_training_forward, unwrap_model
from ..models.registry import get_adapter, load_pretrained
from ..weighting import WeightStats
from .checkpoints import record_checkpoint, verify_checkpoint
from .model_card import describe_training_data, write_model_card
from .rwr_config import RewardWeightedMultimodalConfig

logger = logging.get_logger(__name__)

MODALITIES = ((TEXT, "text"), (IMAGE, "image"))


def _prepare_zero3_init(args: RewardWeightedMultimodalConfig) -> None:
    """With ZeRO-3 (``zero3_init_flag``), ``from_pretrained`` partitions the model over DeepSpeed's process group as it
    loads: set that group up first (the Trainer would only do so later; without it DeepSpeed assumes one process)."""
    from transformers.integrations import is_deepspeed_zero3_enabled

    _ = args.device  # accelerate's process group
    if is_deepspeed_zero3_enabled():
        import deepspeed

        deepspeed.init_distributed()


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
            _prepare_zero3_init(args)
            init_kwargs = args.model_init_kwargs or {}  # a JSON string on the command line: parsed by the config
            if args.world_size > 1:  # each process holds its whole copy: a device map ("auto") would split it
                init_kwargs = {**init_kwargs, "device_map": None}
            model = load_pretrained(model, adapter_name=args.model_adapter, **init_kwargs)
        if processing_class is None:
            if not model_id:
                raise ValueError("Pass `processing_class`: it cannot be loaded for a model with no name or path.")
            processing_class = AutoProcessor.from_pretrained(model_id)

        self.adapter = get_adapter(model, processing_class, args.model_adapter)
        for module in self.adapter.frozen_modules(model):
            module.requires_grad_(False)
        quantized = getattr(unwrap_model(model), "is_quantized", False)
        if quantized and peft_config is None:
            raise ValueError("A quantized (k-bit) model can only be trained with adapters: pass `peft_config` (QLoRA).")
        if args.gradient_checkpointing and args.gradient_checkpointing_kwargs is None:
            args.gradient_checkpointing_kwargs = {"use_reentrant": False}  # works with frozen embeddings (LoRA)
        if peft_config is not None:
            model = self._peft_model(model, peft_config, args, quantized)
        # Every head runs inside the forward that DDP/DeepSpeed wrap (see `install_training_forward`).
        install_training_forward(model, self.adapter)

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
        # Per mode, [statistic, modality] sums over the logging window: weighted loss, its normaliser (tokens or
        # sequences), summed weights and samples having the modality; summed over processes when logged.
        self._metric_sums: dict[str, torch.Tensor | None] = {"train": None, "eval": None}
        self._pending_weight_logs = bool(self.weight_stats)
        if hasattr(self.model, "add_model_tags"):
            self.model.add_model_tags(self._tag_names)

    def _peft_model(self, model, peft_config, args, quantized: bool):
        """``get_peft_model`` with what TRL's SFTTrainer does around it (LoRA, QLoRA, ZeRO-3, checkpointing)."""
        from peft import get_peft_model

        if getattr(peft_config, "target_modules", "unset") is None:
            peft_config.target_modules = self.adapter.lora_target_modules
        zero3 = args.deepspeed_plugin is not None and args.deepspeed_plugin.zero_stage == 3
        # ZeRO-3 gathers parameters in the dtype of the first one: keep bf16 adapters on a bf16 base (TRL #6089).
        model = get_peft_model(
            model, peft_config, **({"autocast_adapter_dtype": False} if zero3 and not quantized else {})
        )
        if zero3 and args.gradient_checkpointing:  # PEFT + ZeRO-3 needs reentrant checkpointing (as in TRL)
            args.gradient_checkpointing_kwargs = {**(args.gradient_checkpointing_kwargs or {}), "use_reentrant": True}
        if args.gradient_checkpointing:  # checkpointed blocks of a frozen base need inputs that require grad
            model.enable_input_require_grads()
        if quantized:  # QLoRA: adapters in bf16, as in the QLoRA paper and TRL (DoRA magnitudes stay fp32)
            for name, parameter in model.named_parameters():
                if parameter.requires_grad and "lora_magnitude_vector" not in name:
                    parameter.data = parameter.data.to(torch.bfloat16)
        return model

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
        coefficients = torch.tensor([getattr(args, f"{name}_loss_weight") for _, name in MODALITIES])  # TEXT, IMAGE
        labels = inputs["labels"]
        off = [mod for mod, _ in MODALITIES if coefficients[mod] == 0]
        if off:  # a switched-off modality is not scored (its head still runs, with a zero-weighted contribution)
            labels = labels.masked_fill(
                torch.isin(inputs["modality"], torch.tensor(off, device=labels.device)), IGNORE_INDEX
            )
        # The wrapped forward runs backbone and heads (see `install_training_forward`): per-sample, per-modality sums [B, 2].
        outputs = model(
            input_ids=inputs["input_ids"],
            attention_mask=inputs["attention_mask"],
            labels=labels,
            modality=inputs["modality"],
        )
        loss_sum, count = outputs.loss_sum, outputs.count

        if num_items_in_batch is None:  # evaluation, or a caller outside the training loop: this batch alone
            normalisers, scale = self._modality_counts({"labels": labels, "modality": inputs["modality"]}), 1.0
        else:  # DDP/DeepSpeed average gradients over processes; the counts are already global
            normalisers, scale = num_items_in_batch, float(self.accelerator.num_processes)
        present = count > 0
        if args.loss_normalization == "sequence":  # each sequence's mean
            loss_sum = loss_sum / count.clamp(min=1)
        weights = torch.stack([inputs[f"{name}_weight"] for _, name in MODALITIES], dim=1).to(loss_sum)  # TEXT, IMAGE
        weighted = (weights * loss_sum).sum(dim=0)  # [2]
        coefficients = coefficients.to(weighted)
        loss = (coefficients * weighted / normalisers.to(weighted).clamp(min=1)).sum() * scale

        units = count.sum(dim=0) if args.loss_normalization == "token" else present.sum(dim=0)
        stats = torch.stack(
            [weighted, units.to(weighted), (weights * present).sum(dim=0), present.sum(dim=0).to(weighted)]
        )
        mode = "train" if model.training else "eval"
        previous = self._metric_sums[mode]
        self._metric_sums[mode] = stats.detach() if previous is None else previous + stats.detach()
        return (loss, outputs) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    # ----- logging ------------------------------------------------------------------------------------------------
    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the per-modality metrics of the logging window, summed over every micro-batch and process.

        ``loss/<modality>`` is the weighted loss over its normaliser (tokens or sequences), ``weights/<modality>_mean``
        the mean weight of the window's samples having that modality; the whole dataset's weight statistics go out once,
        with the first log, as ``dataset_weights/...`` (so they never overwrite the window's mean). Every process calls ``log`` at the same steps (as
        ``Trainer`` does), so the sum over processes is one collective per log.
        """
        mode = "train" if self.model.training else "eval"
        sums = self._metric_sums[mode]
        if sums is None:
            sums = torch.zeros(4, len(MODALITIES), device=self.args.device)
        if self.accelerator.num_processes > 1:
            sums = self.accelerator.reduce(sums.to(self.args.device), reduction="sum")
        metrics = {}
        for mod, name in MODALITIES:
            weighted, units, weight_sum, samples = sums[:, mod].tolist()
            if units > 0:
                metrics[f"loss/{name}"] = weighted / units
            if samples > 0:
                metrics[f"weights/{name}_mean"] = weight_sum / samples
        if mode == "eval":
            metrics = {f"eval_{key}": value for key, value in metrics.items()}
        logs = {**logs, **metrics}
        if self._pending_weight_logs and mode == "train":  # once, with the first training log
            for name, stats in self.weight_stats.items():
                for field, value in vars(stats).items():
                    logs[f"dataset_weights/{name}_{field}"] = value
            for source, by_modality in self.source_weight_stats.items():
                for name, stats in by_modality.items():
                    for field, value in vars(stats).items():
                        logs[f"dataset_weights/{source}/{name}_{field}"] = value
            self._pending_weight_logs = False
        super().log(logs, start_time)
        self._metric_sums[mode] = None

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
