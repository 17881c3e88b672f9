"""Training cases shared by the 2-process workers (torchrun) and their 1-process references (the test process).

Every case trains 3 optimizer steps of a tiny family model with the Trainer's default arguments (optimizer, DDP
flags, clipping) on 24 rows, most of them text-only, so that some micro-batches have no image position at all.
The global batch is 4 rows per micro-batch step on any number of processes (2 x 2, or 1 x 4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from datasets import Dataset

from tests.sample_rows import make_rows
from trl_unified import RewardWeightedMultimodalConfig, RewardWeightedMultimodalTrainer
from trl_unified.models.base import IGNORE_INDEX, IMAGE
from trl_unified.models.registry import get_adapter
from trl_unified.testing.families import FAMILIES as BUILDERS

GLOBAL_BATCH = 4
STEPS = 3
NUM_ROWS = 24
IMAGE_ROWS = {0, 5, 11, 18}  # the other 20 rows are text-only


@dataclass(frozen=True)
class Case:
    family: str
    kind: str  # "full", "lora", "lora_gc" (with gradient checkpointing), "image_off"
    accumulation: int = 1
    from_path: bool = False  # the trainer loads the model itself (ZeRO-3 init) and encodes an `image` column

    @property
    def name(self) -> str:
        return f"{self.family}-{self.kind}" + ("-from_path" if self.from_path else "")


def cases(strategy: str) -> list[Case]:
    """The cases run under a strategy: full fine-tuning (with accumulation), LoRA, and the image loss switched off."""
    from_path = strategy == "zero3_init"
    kinds = [("full", 2), ("lora", 1)]
    if not from_path and strategy != "zero3_offload":
        kinds.append(("image_off", 1))
    if strategy in ("ddp", "zero3"):  # DDP's defaults change with checkpointing; PEFT + ZeRO-3 needs it reentrant
        kinds.append(("lora_gc", 1))
    # Emu3 is left out of ZeRO-3 init: transformers 5.24's `Emu3VQVAE._init_weights` reads a conv weight's fan-in on
    # the empty partition while loading under zero.Init (ValueError "Fan in and fan out can not be computed"),
    # before any of our code runs. docs/scaling.md says so.
    families = [f for f in BUILDERS if not (from_path and f == "emu3")]
    return [Case(family, kind, accumulation, from_path) for family in families for kind, accumulation in kinds]


def build(family: str):
    return BUILDERS[family](seed=0)


def rows_for(case: Case, adapter) -> list[dict]:
    rows = make_rows(
        NUM_ROWS,
        num_image_tokens=adapter.num_image_tokens,
        codebook_size=adapter.codebook_size,
        seed=7,
        text_only=set(range(NUM_ROWS)) - IMAGE_ROWS,
    )
    if case.from_path and case.family != "causal_lm":  # raw pictures: the VQ encoder runs in dataset preparation
        from PIL import Image

        rng = np.random.default_rng(0)
        for row in rows:
            codes = row.pop("image_tokens")
            row["image"] = None if codes is None else Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    return rows


def lora_config(family: str, adapter):
    from peft import LoraConfig

    targets = adapter.lora_target_modules
    if family != "janus":  # LoRA on the shared-vocabulary head too: its sliced image logits must go through it
        targets = f"{targets}|(?:.*\\.)?lm_head"
    return LoraConfig(r=4, lora_alpha=8, target_modules=targets, init_lora_weights=False)


def training_args(case: Case, output_dir: str, world_size: int, deepspeed: dict | None = None):
    return RewardWeightedMultimodalConfig(
        output_dir,
        per_device_train_batch_size=GLOBAL_BATCH // world_size,
        gradient_accumulation_steps=case.accumulation,
        max_steps=STEPS,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
        beta=0.5,
        image_loss_weight=0.0 if case.kind == "image_off" else 1.0,
        gradient_checkpointing=case.kind == "lora_gc",
        deepspeed=deepspeed,
    )


def make_trainer(case: Case, output_dir: str, world_size: int, base_path: str, deepspeed: dict | None = None):
    """The trainer of ``case``. A model instance is built before the arguments; with a ZeRO-3 config, arguments
    built first make transformers partition a model as it is created or loaded (``zero3_init_flag``)."""
    model, processor = build(case.family)
    args = training_args(case, output_dir, world_size, deepspeed)
    adapter = get_adapter(model, processor)
    rows = rows_for(case, adapter)
    torch.manual_seed(0)  # LoRA's initial weights
    return RewardWeightedMultimodalTrainer(
        base_path if case.from_path else model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=processor,
        peft_config=lora_config(case.family, adapter) if case.kind.startswith("lora") else None,
    )


def record_micro_batches(trainer) -> list[bool]:
    """Whether each training micro-batch of this process had an image position with a label (in call order)."""
    seen: list[bool] = []
    compute_loss = trainer.compute_loss

    def recording(model, inputs, *args, **kwargs):
        if model.training:
            seen.append(bool(((inputs["modality"] == IMAGE) & (inputs["labels"] != IGNORE_INDEX)).any()))
        return compute_loss(model, inputs, *args, **kwargs)

    trainer.compute_loss = recording
    return seen


def probe_batch(case: Case, trainer) -> dict:
    """A fixed batch with image and text rows, to compare log-probs of trained and reloaded models."""
    rows = [
        trainer.train_dataset[i] for i in range(len(trainer.train_dataset)) if trainer.train_dataset[i]["image_tokens"]
    ][:2]
    rows += [trainer.train_dataset[i] for i in (1, 2)]
    return trainer.data_collator(rows)


def deepspeed_config(strategy: str) -> dict | None:
    if strategy == "ddp":
        return None
    zero = {"stage": 2}
    if strategy != "zero2":  # threshold 0: partition every parameter (tiny ones would otherwise stay whole everywhere)
        zero = {"stage": 3, "stage3_gather_16bit_weights_on_model_save": True, "stage3_param_persistence_threshold": 0}
    config = {
        "zero_optimization": zero,
        "train_batch_size": "auto",
        "train_micro_batch_size_per_gpu": "auto",
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
    }
    if strategy == "zero3_offload":
        zero["offload_optimizer"] = {"device": "cpu"}
        zero["offload_param"] = {"device": "cpu"}
        config["zero_force_ds_cpu_optimizer"] = False  # the Trainer's torch AdamW (no cpu_adam build)
    return config
