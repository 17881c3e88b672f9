# Copyright the trl-unified authors. Licensed under the Apache License, Version 2.0.
"""The study (`trl-unified ablate`) on your own model: the four findings with seeds, on your prompts and judge.

Builds a `trl_unified.study.StudyWorld` from a model, a categorised evaluation set (GenEval's
`evaluation_metadata.jsonl` as it is), a prompt source for training prompts (a categorised prompt set, or a YAML
grammar such as examples/targeting/geneval_grammar.yaml) and reward specs, then runs `run_study` with every
`StudyConfig` option (seeds, arms, pool size, K, learning rate...).

    python examples/ablations/study_own_model.py --model_name_or_path deepseek-community/Janus-Pro-1B \
        --eval_set geneval/evaluation_metadata.jsonl --source examples/targeting/geneval_grammar.yaml \
        --image_rewards vqascore:Qwen/Qwen2.5-VL-3B-Instruct --metric image/vqa_score --threshold 0.5 \
        --seeds 0 1 2 --pool_size 500 --samples_per_prompt 4 --guidance_scale 5 --max_text_tokens 128 \
        --output_dir janus-study

Each arm trains a LoRA adapter from the base model on one GPU (`study/rounds.py`); at 1B parameters, budget roughly
the example loop's time (examples/scripts/rwr_self_generated.py) times six arms times the seeds.
"""

import json
from dataclasses import dataclass, field
from typing import Any

from transformers import AutoProcessor
from trl import TrlParser

from trl_unified.evaluation import load_prompt_set
from trl_unified.models.registry import load_pretrained
from trl_unified.scripts.evaluate import load_rewards
from trl_unified.study import StudyConfig, StudyWorld, run_study
from trl_unified.targeting import DatasetPromptSource, GrammarPromptSource


@dataclass
class WorldArguments:
    model_name_or_path: str = field(metadata={"help": "The base model: Hub id or folder."})
    eval_set: str = field(metadata={"help": "Held-out evaluation prompts with categories (file, folder or Hub id)."})
    source: str = field(metadata={"help": "Training prompts: a categorised prompt set or a YAML grammar."})
    image_rewards: list[str] = field(metadata={"help": "Image rewards (`load_reward` specs), for training and eval."})
    text_rewards: list[str] = field(default_factory=list, metadata={"help": "Text rewards (`load_reward` specs)."})
    metric: str = field(default="image_reward", metadata={"help": "Column that decides an evaluation sample."})
    threshold: float = field(default=0.5, metadata={"help": "A sample is correct when its metric is >= this."})
    reward_device: str | None = field(default=None, metadata={"help": "Device of model-based rewards."})
    max_length: int = field(default=2048, metadata={"help": "Longest training sequence (prompt, reasoning, image)."})
    training_kwargs: dict[str, Any] | str | None = field(
        default=None,
        metadata={"help": "Other `RewardWeightedMultimodalConfig` fields for every arm, as a dict (JSON here)."},
    )

    def __post_init__(self):
        if isinstance(self.training_kwargs, str):
            self.training_kwargs = json.loads(self.training_kwargs)


def build_world(args: WorldArguments) -> StudyWorld:
    if args.source.endswith((".yaml", ".yml")):
        source = GrammarPromptSource.from_yaml(args.source)
    else:
        source = DatasetPromptSource(args.source)
    return StudyWorld(
        name=args.model_name_or_path,
        load_model=lambda: (
            load_pretrained(args.model_name_or_path),
            AutoProcessor.from_pretrained(args.model_name_or_path),
        ),
        eval_set=load_prompt_set(args.eval_set),
        source=source,
        text_rewards=load_rewards(args.text_rewards, args.reward_device),
        image_rewards=load_rewards(args.image_rewards, args.reward_device),
        metric=args.metric,
        threshold=args.threshold,
        training={"max_length": args.max_length, **(args.training_kwargs or {})},
    )


def main(argv=None):
    world_args, study = TrlParser((WorldArguments, StudyConfig)).parse_args_and_config(args=argv)
    return run_study(study, build_world(world_args))


if __name__ == "__main__":
    main()
