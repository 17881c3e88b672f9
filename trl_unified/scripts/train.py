"""`trl-unified train`: reward-weighted post-training from the command line (or a `--config` YAML file).

    trl-unified train --model_name_or_path PATH --dataset_name DATA --output_dir OUT --use_peft \
        --reward_weighting exp --beta 0.5 --image_loss_weight 1.0
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import ModelConfig, TrlParser, get_peft_config, get_quantization_config


@dataclass
class TrainScriptArguments:
    dataset_name: str = field(metadata={"help": "Hub id, `save_to_disk` folder, or JSONL/Parquet/CSV file."})
    dataset_config: str | None = field(default=None, metadata={"help": "Dataset configuration name (Hub datasets)."})
    dataset_train_split: str = field(default="train", metadata={"help": "Split to train on."})
    dataset_test_split: str | None = field(default=None, metadata={"help": "Split to evaluate on (none if unset)."})
    dataset_allow_incomplete: bool = field(
        default=False,
        metadata={
            "help": "Train on the finished shards of a self-generation run that did not finish (otherwise refused, "
            "with the number of missing shards)."
        },
    )


def make_parser(prog: str = "trl-unified train") -> TrlParser:
    from ..cli import concise_errors
    from ..trainer.rwr_config import RewardWeightedMultimodalConfig

    return concise_errors(TrlParser((TrainScriptArguments, RewardWeightedMultimodalConfig, ModelConfig), prog=prog))


def main(argv: list[str] | None = None) -> None:
    """Parse and run; errors are reported by `trl_unified.cli` (one line, exit status 2 for bad input)."""
    script_args, training_args, model_args = make_parser().parse_args_and_config(args=argv)
    run(script_args, training_args, model_args)


def run(script_args: TrainScriptArguments, training_args, model_args: ModelConfig):
    """Check everything that can be checked without the model, load the data, then the model, then train."""
    from ..data.loading import load_any_dataset
    from ..models.registry import adapter_class, checkpoint_model_type
    from ..trainer.rwr_trainer import RewardWeightedMultimodalTrainer

    if model_args.model_name_or_path is None:
        raise ValueError("--model_name_or_path is required")
    if script_args.dataset_test_split is not None and script_args.dataset_test_split == script_args.dataset_train_split:
        raise ValueError(
            f"dataset_test_split is the training split ({script_args.dataset_train_split!r}): evaluating on the "
            "training data says nothing; name a held-out split, or leave it unset"
        )
    if training_args.model_adapter is not None:
        adapter_class(name=training_args.model_adapter)  # an unknown name fails here
    init_kwargs = dict(training_args.model_init_kwargs or {})
    init_kwargs.setdefault("revision", model_args.model_revision)
    checkpoint_model_type(model_args.model_name_or_path, revision=init_kwargs["revision"])  # the path is a model
    if model_args.dtype not in (None, "auto"):
        init_kwargs.setdefault("dtype", model_args.dtype)
    if model_args.attn_implementation is not None:
        init_kwargs.setdefault("attn_implementation", model_args.attn_implementation)
    quantization = get_quantization_config(model_args)
    if quantization is not None:
        init_kwargs.setdefault("quantization_config", quantization)
    training_args.model_init_kwargs = init_kwargs

    def load(split: str):
        return load_any_dataset(
            script_args.dataset_name, split, script_args.dataset_config,
            allow_incomplete=script_args.dataset_allow_incomplete,
        )  # fmt: skip

    train = load(script_args.dataset_train_split)
    evaluation = load(script_args.dataset_test_split) if script_args.dataset_test_split else None
    trainer = RewardWeightedMultimodalTrainer(
        model_args.model_name_or_path,
        args=training_args,
        train_dataset=train,
        eval_dataset=evaluation,
        peft_config=get_peft_config(model_args),
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model(training_args.output_dir)
    trainer.create_model_card(dataset_name=script_args.dataset_name)  # the card names the dataset the command read
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.dataset_name)
    return trainer
