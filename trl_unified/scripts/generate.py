"""`trl-unified generate`: self-generate K scored samples per prompt into a dataset (options or a `--config` YAML).

    trl-unified generate --model_name_or_path PATH --prompts prompts.jsonl --num_samples 8 --output_dir OUT \
        --image_rewards clip:openai/clip-vit-base-patch32 --text_rewards python:my_rewards:plan_reward \
        --mode unified --max_text_tokens 128 --guidance_scale 5 --shard_size 64

Killed and restarted with the same arguments, it resumes (finished shards are kept). Under
`torchrun --nproc_per_node N -m trl_unified.cli generate ...` (or `accelerate launch`), the N processes share the
shards and the main one assembles the dataset. Then: `trl-unified train --dataset_name OUT ...`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from trl import TrlParser


def make_parser(prog: str = "trl-unified generate") -> TrlParser:
    from ..cli import concise_errors
    from ..generation.self_generation_config import SelfGenerationConfig

    return concise_errors(TrlParser((SelfGenerationConfig,), prog=prog))


def main(argv: list[str] | None = None) -> None:
    """Parse and run; errors are reported by `trl_unified.cli` (one line, exit status 2 for bad input)."""
    (config,) = make_parser().parse_args_and_config(args=argv)
    run(config)


def check_before_loading(config, is_main: bool = True) -> None:
    """What can be checked without the model: required options, rewards, the output folder, the prompts.

    The lock is looked at by the main process only: under a launcher, another rank may already hold it for this run.
    """
    from ..generation.prompts import prompt_table
    from ..generation.run_state import check_lock, check_output_dir

    for option in ("model_name_or_path", "prompts", "output_dir"):
        if not getattr(config, option):
            raise ValueError(f"--{option} is required")
    if not config.text_rewards and not config.image_rewards and not config.no_rewards:
        raise ValueError(
            "no rewards: pass --text_rewards and/or --image_rewards, or --no_rewards to generate unscored samples "
            "(their text_reward and image_reward would be 0.0)"
        )
    check_output_dir(Path(config.output_dir))
    if is_main:
        check_lock(Path(config.output_dir))
    prompt_table(config)  # readable and not empty


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def summary(statistics: dict[str, Any]) -> str:
    """A few lines for the terminal: samples, switch rate, mean rewards, failures."""
    lines = [
        f"samples: {statistics['num_samples']} ({statistics['num_prompts']} prompts)",
        f"autonomous switch rate: {_fmt(statistics['switch_rate'])} (forced: {_fmt(statistics['forced_switch_rate'])})",
    ]
    for column, values in statistics["rewards"].items():
        mean, std, failed = _fmt(values["mean"]), _fmt(values["std"]), values["num_failed"]
        lines.append(f"mean {column}: {mean} (std {std}, failed {failed})")
    lines.append(
        f"failed reward evaluations: {statistics['num_failed_reward_evaluations']} "
        f"({statistics['num_failed_samples']} samples)"
    )
    return "\n".join(lines)


def run(config):
    import torch
    from transformers import AutoProcessor

    from ..generation.processes import Processes
    from ..generation.self_generation import self_generate
    from ..generation.statistics import generation_statistics
    from ..models.registry import load_pretrained

    processes = Processes()  # sets up the process group under torchrun/accelerate before the model is placed
    check_before_loading(config, processes.is_main)
    if processes.state is not None:
        device = processes.state.device
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    else:
        device = torch.device("cpu")
    init_kwargs: dict[str, Any] = {}
    if config.model_revision:
        init_kwargs["revision"] = config.model_revision
    if config.dtype:
        init_kwargs["dtype"] = config.dtype if config.dtype == "auto" else getattr(torch, config.dtype)
    model = load_pretrained(config.model_name_or_path, adapter_name=config.model_adapter, **init_kwargs)
    model.to(device).eval()
    processor_kwargs = {"revision": config.model_revision} if config.model_revision else {}
    processing_class = AutoProcessor.from_pretrained(config.model_name_or_path, **processor_kwargs)

    dataset = self_generate(model, processing_class, None, config)
    if processes.is_main:
        print(f"self-generated dataset saved in {config.output_dir}")
        print(summary(generation_statistics(dataset)))
    return dataset
