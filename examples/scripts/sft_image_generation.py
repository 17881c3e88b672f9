# Copyright the trl-unified authors. Licensed under the Apache License, Version 2.0.
"""Supervised fine-tuning of image generation on an image-caption dataset.

Every image becomes the model family's image codes once, before training (Janus and Emu3: their VQ model; a causal LM
with image codes in its vocabulary: its codec), and the model learns `[caption]<begin-of-image>[codes]` with plain
cross-entropy: `RewardWeightedMultimodalTrainer` with `reward_weighting="none"` (no reward columns needed).

    # one GPU, LoRA
    python examples/scripts/sft_image_generation.py \
        --model_name_or_path deepseek-community/Janus-Pro-1B --dtype bfloat16 \
        --dataset_name reach-vb/pokemon-blip-captions --caption_column text \
        --use_peft --lora_r 32 --lora_alpha 64 --learning_rate 1e-4 \
        --per_device_train_batch_size 4 --gradient_accumulation_steps 4 --num_train_epochs 1 \
        --output_dir Janus-Pro-1B-pokemon --push_to_hub

    # 8 GPUs, DeepSpeed ZeRO-2 (the same options, or all of them in a YAML file given with --config)
    accelerate launch --config_file examples/accelerate_configs/deepspeed_zero2.yaml \
        examples/scripts/sft_image_generation.py --config examples/configs/sft_janus_pro_1b.yaml

The dataset is anything `datasets.load_dataset` reads (a Hub id, a folder of Parquet/JSON/image files): a column of
images and a column of captions (strings). See docs/dataset_format.md for the rows the trainer reads.
"""

from dataclasses import dataclass, field

from datasets import load_dataset
from trl import ModelConfig, TrlParser, get_peft_config, get_quantization_config

from trl_unified import RewardWeightedMultimodalConfig, RewardWeightedMultimodalTrainer


@dataclass
class ScriptArguments:
    dataset_name: str = field(metadata={"help": "Image-caption dataset: a Hub id or a local folder."})
    dataset_config: str | None = field(default=None, metadata={"help": "Dataset configuration (subset) name."})
    dataset_train_split: str = field(default="train", metadata={"help": "Split to train on."})
    image_column: str = field(default="image", metadata={"help": "Column holding the images."})
    caption_column: str = field(default="text", metadata={"help": "Column holding the captions (strings)."})
    max_samples: int | None = field(default=None, metadata={"help": "Train on the first N rows only (a quick try)."})


def main(script_args, training_args, model_args):
    dataset = load_dataset(
        script_args.dataset_name, name=script_args.dataset_config, split=script_args.dataset_train_split
    )
    for column in (script_args.image_column, script_args.caption_column):
        if column not in dataset.column_names:
            raise ValueError(f"{script_args.dataset_name} has no column {column!r}; it has {dataset.column_names}")
    if script_args.max_samples is not None:
        dataset = dataset.select(range(min(script_args.max_samples, len(dataset))))
    # The trainer's rows: the caption is the prompt, the image its target (encoded to codes by the trainer, once).
    dataset = dataset.select_columns([script_args.caption_column, script_args.image_column])
    dataset = dataset.rename_columns({script_args.caption_column: "prompt", script_args.image_column: "image"})

    model_kwargs = {
        "revision": model_args.model_revision,
        "dtype": model_args.dtype,
        "attn_implementation": model_args.attn_implementation,
        "quantization_config": get_quantization_config(model_args),
    }
    model_kwargs = {key: value for key, value in model_kwargs.items() if value is not None}
    training_args.model_init_kwargs = {**model_kwargs, **(training_args.model_init_kwargs or {})}
    trainer = RewardWeightedMultimodalTrainer(
        model_args.model_name_or_path,
        args=training_args,
        train_dataset=dataset,
        peft_config=get_peft_config(model_args),
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model(training_args.output_dir)
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.dataset_name)


def make_parser():
    parser = TrlParser((ScriptArguments, RewardWeightedMultimodalConfig, ModelConfig))
    parser.set_defaults(reward_weighting="none", text_reward_column=None, image_reward_column=None)  # plain SFT
    return parser


if __name__ == "__main__":
    script_args, training_args, model_args = make_parser().parse_args_and_config()
    main(script_args, training_args, model_args)
