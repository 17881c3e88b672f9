"""One round of the method in memory: self-generate scored samples for a prompt pool, then post-train on them.

The demo (``trl_unified.shapes.demo``) chains these rounds; the study (:mod:`.run`) runs one per arm. Both share
:class:`RoundSettings`, the sampling and training settings of a round, so a study arm trains exactly as the demo does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..generation.sampler import SamplingConfig


@dataclass
class RoundSettings:
    """Sampling and post-training settings of a self-generate -> train round (command-line options and YAML keys)."""

    pool_size: int = field(default=192, metadata={"help": "Prompts in each round's pool."})
    samples_per_prompt: int = field(default=8, metadata={"help": "K: self-generated samples per pool prompt."})
    min_category_share: float = field(
        default=0.1, metadata={"help": "Every category keeps at least this share of a targeted pool, however good."}
    )
    beta: float = field(default=0.05, metadata={"help": "Temperature of the exp weighting (rewards are in [0, 1])."})
    learning_rate: float = field(default=2e-3, metadata={"help": "Post-training learning rate."})
    epochs: float = field(default=3.0, metadata={"help": "Post-training epochs over each round's samples."})
    batch_size: int = field(default=32, metadata={"help": "Post-training batch size."})
    use_lora: bool = field(default=True, metadata={"help": "LoRA (merged after each round); False: full fine-tuning."})
    lora_r: int = field(default=32, metadata={"help": "LoRA rank."})
    guidance_scale: float = field(default=1.0, metadata={"help": "Classifier-free guidance on image codes (1: off)."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature (text and image)."})
    max_text_tokens: int = field(default=48, metadata={"help": "Longest reasoning the sampler writes."})
    sampling_batch_size: int = field(default=64, metadata={"help": "Samples per sampler forward."})
    report_to: str = field(
        default="none",
        metadata={"help": "Reporters (`wandb`, ...) for training logs and the sample tables of evaluations."},
    )

    def _check(self) -> None:
        """Every option, before minutes of work: a bad value fails at once, naming the option."""
        for name in ("pool_size", "samples_per_prompt", "batch_size", "lora_r", "max_text_tokens",
                     "sampling_batch_size"):  # fmt: skip
            check_positive(self, name, int)
        for name in ("beta", "learning_rate", "epochs", "guidance_scale", "temperature"):
            check_positive(self, name, float)
        if not 0 <= self.min_category_share < 1:
            raise ValueError(f"min_category_share must be in [0, 1), got {self.min_category_share!r}")

    def shrink(self, **limits: float) -> None:
        """Lower each named setting to at most its limit (what ``--quick`` does)."""
        for name, limit in limits.items():
            setattr(self, name, min(getattr(self, name), limit))

    def sampling(self, seed: int) -> SamplingConfig:
        """The sampler's settings (the mode is chosen per call)."""
        return SamplingConfig(
            max_text_tokens=self.max_text_tokens,
            temperature=self.temperature,
            image_temperature=self.temperature,
            guidance_scale=self.guidance_scale,
            batch_size=self.sampling_batch_size,
            seed=seed,
        )


def check_positive(config: Any, name: str, kind: type = int, zero: bool = False) -> None:
    value = getattr(config, name)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= 0 if zero else value > 0) and (kind is float or float(value).is_integer())
    if not ok:
        what = "an integer" if kind is int else "a finite number"
        raise ValueError(f"{name} must be {what} {'>= 0' if zero else '> 0'}, got {value!r}")


def check_evaluation(config: Any) -> None:
    """The evaluation settings a demo or a study shares: positive sizes, ``eval_prompts`` a file and ``base_model``
    a folder when given."""
    for name in ("eval_prompts_per_category", "eval_samples_per_category"):
        check_positive(config, name)
    if config.eval_prompts is not None and not Path(config.eval_prompts).is_file():
        raise ValueError(f"eval_prompts {config.eval_prompts}: no such file")
    if config.base_model is not None and not Path(config.base_model).is_dir():
        raise ValueError(f"base_model {config.base_model}: no such folder")


def self_generate_round(
    model,
    processing_class,
    pool: Sequence[dict[str, str]],
    settings: RoundSettings,
    sampling: SamplingConfig,
    folder: str | Path,
    *,
    text_rewards: Sequence[Callable],
    image_rewards: Sequence[Callable],
):
    """K scored unified-mode samples per pool prompt (``{"prompt", "category"}``), in the trainer's format, with the
    self-generation utility (written to ``folder``)."""
    from ..generation.self_generation import self_generate
    from ..generation.self_generation_config import SelfGenerationConfig

    config = SelfGenerationConfig(
        output_dir=str(folder),
        num_samples=settings.samples_per_prompt,
        mode="unified",
        max_text_tokens=sampling.max_text_tokens,
        temperature=sampling.temperature,
        image_temperature=sampling.image_temperature,
        guidance_scale=sampling.guidance_scale,
        batch_size=sampling.batch_size,
        seed=sampling.seed,
        report_to=[settings.report_to],
    )
    prompts = [{"prompt": p["prompt"], "prompt_id": i, "category": p["category"]} for i, p in enumerate(pool)]
    return self_generate(
        model, processing_class, prompts, config, text_rewards=text_rewards, image_rewards=image_rewards
    )


def post_train(
    model,
    processing_class,
    dataset,
    settings: RoundSettings,
    folder: str | Path,
    *,
    seed: int,
    max_length: int | None = 1024,
    lora_modules_to_save: list[str] | None = None,
    reward_weighting: str = "exp",
    **config_overrides: Any,
):
    """One round of reward-weighted post-training on ``dataset``; returns the trained model (LoRA merged into it).

    ``config_overrides`` go to :class:`~trl_unified.trainer.rwr_config.RewardWeightedMultimodalConfig` (a study arm
    sets ``text_reward_column=None`` there, for instance). ``lora_modules_to_save``: modules trained in full beside
    the LoRA layers.
    """
    from peft import LoraConfig

    from ..trainer.rwr_config import RewardWeightedMultimodalConfig
    from ..trainer.rwr_trainer import RewardWeightedMultimodalTrainer

    folder = Path(folder)
    args = RewardWeightedMultimodalConfig(
        output_dir=str(folder),
        reward_weighting=reward_weighting,
        beta=settings.beta,
        learning_rate=settings.learning_rate,
        num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size,
        lr_scheduler_type="cosine",
        warmup_steps=10,
        logging_steps=10,
        save_strategy="no",
        report_to=settings.report_to,
        use_cpu=True,
        seed=seed,
        max_length=max_length,
        **config_overrides,
    )
    peft_config = (
        LoraConfig(
            r=settings.lora_r, lora_alpha=settings.lora_r, target_modules=None, modules_to_save=lora_modules_to_save
        )
        if settings.use_lora
        else None
    )
    trainer = RewardWeightedMultimodalTrainer(
        model, args=args, train_dataset=dataset, processing_class=processing_class, peft_config=peft_config
    )
    trainer.train()
    trainer.save_model(str(folder / "model"))
    return trainer.model.merge_and_unload() if settings.use_lora else trainer.model


__all__ = ["RoundSettings", "check_evaluation", "check_positive", "post_train", "self_generate_round"]
