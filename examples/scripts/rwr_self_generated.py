# Copyright the trl-unified authors. Licensed under the Apache License, Version 2.0.
"""The whole method in one run: self-generate K scored samples per prompt, then reward-weighted LoRA training on them.

1. The model writes K (reasoning, image) samples per prompt in one unified pass (`trl_unified.self_generate`).
2. A VQAScore judge scores each image (`vqascore:<vision-language model>`), a text reward each reasoning.
3. `RewardWeightedMultimodalTrainer` trains a LoRA adapter with each modality's loss weighted by its reward.
4. With `--push_to_hub`, the scored dataset and the adapter (with their cards) go to the Hub.

    # Janus-Pro-1B on one GPU (examples/configs/janus_pro_1b.yaml holds the settings; any option overrides them)
    python examples/scripts/rwr_self_generated.py --config examples/configs/janus_pro_1b.yaml \
        --prompts my_prompts.txt --hub_model_id me/Janus-Pro-1B-rwr --push_to_hub

    # Emu3 on 8 GPUs: the prompts are shared among the processes, then DeepSpeed ZeRO-2 trains
    accelerate launch --config_file examples/accelerate_configs/deepspeed_zero2.yaml \
        examples/scripts/rwr_self_generated.py --config examples/configs/emu3_gen.yaml --prompts my_prompts.txt

Prompts: a `.txt` file (one per line), a JSONL/Parquet/CSV file or a datasets folder/Hub id with a `prompt` column.
The text reward below (does the plan name what the prompt asks for?) is a stand-in: pass `--text_rewards
judge:<LM>` (or `python:<module>:<function>`) to use your own. Other self-generation settings (temperature, top-k,
shard size...) go in `--generation_kwargs '{"temperature": 0.9}'`: any field of `SelfGenerationConfig`.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any

from transformers import AutoModelForImageTextToText, AutoProcessor
from trl import ModelConfig, TrlParser, get_peft_config

from trl_unified import (
    RewardWeightedMultimodalConfig,
    RewardWeightedMultimodalTrainer,
    SelfGenerationConfig,
    self_generate,
)


@dataclass
class LoopArguments:
    prompts: str = field(metadata={"help": "Prompts: a .txt/.jsonl/.parquet/.csv file, a datasets folder or Hub id."})
    max_prompts: int | None = field(default=None, metadata={"help": "Use only the first N prompts."})
    num_samples: int = field(default=4, metadata={"help": "K: samples generated per prompt."})
    image_rewards: list[str] = field(
        default_factory=lambda: ["vqascore:Qwen/Qwen2.5-VL-3B-Instruct"],
        metadata={"help": "Image rewards (`load_reward` specs), e.g. `vqascore:<model>` or `clip:<model>`."},
    )
    text_rewards: list[str] = field(
        default_factory=list,
        metadata={"help": "Text rewards (`load_reward` specs); none given: this script's `plan_names_prompt`."},
    )
    max_text_tokens: int = field(default=128, metadata={"help": "Most reasoning tokens per sample."})
    guidance_scale: float = field(default=5.0, metadata={"help": "Classifier-free guidance scale for the image."})
    generation_batch_size: int = field(default=16, metadata={"help": "Samples per sampler forward batch."})
    generation_kwargs: dict[str, Any] | str | None = field(
        default=None, metadata={"help": "Any other `SelfGenerationConfig` field, as a dict (JSON on the command line)."}
    )
    dataset_dir: str | None = field(
        default=None, metadata={"help": "Where the scored samples are written (default: `<output_dir>-samples`)."}
    )
    hub_dataset_id: str | None = field(
        default=None, metadata={"help": "Hub dataset repo for the samples (default: `<hub_model_id>-samples`)."}
    )

    def __post_init__(self):
        if isinstance(self.generation_kwargs, str):
            self.generation_kwargs = json.loads(self.generation_kwargs)


def plan_names_prompt(prompts, reasoning, images, **columns):
    """Text reward in [0, 1]: the share of the prompt's words (4+ letters) that the reasoning names."""
    rewards = []
    for prompt, plan in zip(prompts, reasoning):
        words = set(re.findall(r"[a-z]{4,}", prompt.lower()))
        named = set(re.findall(r"[a-z]{4,}", (plan or "").lower()))
        rewards.append(len(words & named) / len(words) if words else 0.0)
    return rewards


def main(loop_args, training_args, model_args):
    # 1-2. Self-generate and score (resumable: rerun the same command after a crash). Every process takes its share.
    dataset_dir = loop_args.dataset_dir or f"{training_args.output_dir.rstrip('/')}-samples"
    hub_dataset_id = loop_args.hub_dataset_id
    if hub_dataset_id is None and training_args.hub_model_id:
        hub_dataset_id = f"{training_args.hub_model_id}-samples"
    generation_config = SelfGenerationConfig(
        model_name_or_path=model_args.model_name_or_path,
        prompts=loop_args.prompts,
        max_prompts=loop_args.max_prompts,
        num_samples=loop_args.num_samples,
        image_rewards=loop_args.image_rewards,
        text_rewards=loop_args.text_rewards,
        max_text_tokens=loop_args.max_text_tokens,
        guidance_scale=loop_args.guidance_scale,
        batch_size=loop_args.generation_batch_size,
        seed=training_args.seed,
        output_dir=dataset_dir,
        push_to_hub=training_args.push_to_hub,
        hub_dataset_id=hub_dataset_id,
        **(loop_args.generation_kwargs or {}),
    )
    processor = AutoProcessor.from_pretrained(model_args.model_name_or_path, revision=model_args.model_revision)
    model = AutoModelForImageTextToText.from_pretrained(
        model_args.model_name_or_path, revision=model_args.model_revision, dtype=model_args.dtype
    )
    model.to(training_args.device).eval()  # the device this process trains on
    dataset = self_generate(
        model, processor, config=generation_config, text_rewards=[] if loop_args.text_rewards else [plan_names_prompt]
    )

    # 3. Reward-weighted regression with LoRA (rows already hold token ids and image codes: no re-encoding).
    trainer = RewardWeightedMultimodalTrainer(
        model,
        args=training_args,
        train_dataset=dataset,
        processing_class=processor,
        peft_config=get_peft_config(model_args),
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model(training_args.output_dir)

    # 4. The adapter and its card (the dataset was pushed by self_generate).
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=generation_config.hub_dataset_id)


def make_parser():
    parser = TrlParser((LoopArguments, RewardWeightedMultimodalConfig, ModelConfig))
    # LoRA unless --use_peft false; samples whose reward failed are left out, with a logged count
    parser.set_defaults(use_peft=True, drop_failed_rewards=True)
    return parser


if __name__ == "__main__":
    loop_args, training_args, model_args = make_parser().parse_args_and_config()
    main(loop_args, training_args, model_args)
