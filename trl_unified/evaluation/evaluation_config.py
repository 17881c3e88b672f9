"""Configuration of `trl-unified evaluate` (every field is a command-line option and a `--config` YAML key).

:class:`EvaluationConfig` *is* a :class:`~trl_unified.generation.sampler.SamplingConfig` (the sampler's fields, flat)
plus the model (and an optional PEFT adapter), the prompt set, the modes, N samples per prompt, the rewards and the
outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from ..generation.sampler import MODES, SamplingConfig


@dataclass
class EvaluationConfig(SamplingConfig):
    # ----- model -----
    model_name_or_path: str | None = field(default=None, metadata={"help": "Model to evaluate: Hub id or folder."})
    model_revision: str | None = field(default=None, metadata={"help": "Model revision (branch, tag or commit)."})
    model_adapter: str | None = field(
        default=None, metadata={"help": "Model family adapter (`janus`, `emu3`, `causal_lm`); detected if unset."}
    )
    adapter_path: str | None = field(
        default=None, metadata={"help": "A PEFT adapter (e.g. a LoRA from `trl-unified train`) loaded on the model."}
    )
    dtype: str | None = field(default=None, metadata={"help": "Dtype to load the model in (`bfloat16`, `auto`, ...)."})

    # ----- prompts -----
    prompts: str | None = field(
        default=None,
        metadata={
            "help": "Categorised prompt set: a `.txt` file (one prompt per line, `<category><TAB><prompt>` to name "
            "the category), a JSONL file (`prompt` and `category`; GenEval's `evaluation_metadata.jsonl` as it is), "
            "or a datasets dataset (Hub id or folder) with prompt and category columns."
        },
    )
    prompts_split: str = field(default="train", metadata={"help": "Split of a datasets prompt set."})
    prompts_config: str | None = field(default=None, metadata={"help": "Configuration name of a Hub prompt set."})
    prompt_column: str = field(default="prompt", metadata={"help": "Column holding the prompt."})
    category_column: str = field(default="category", metadata={"help": "Column holding the category."})
    categorize: str | None = field(
        default=None,
        metadata={"help": "`python:<module>:<function>` naming the category of prompts that have none (or `shapes`)."},
    )
    max_prompts: int | None = field(default=None, metadata={"help": "Use only the first N prompts."})

    # ----- samples -----
    modes: list[str] | None = field(
        default=None,
        metadata={"help": f"Modes to evaluate, each its own evaluation (any of {list(MODES)}); default: `mode`."},
    )
    num_samples: int = field(default=1, metadata={"help": "N: samples per prompt."})
    samples_per_category: int | None = field(
        default=None,
        metadata={"help": "Repeat prompts so that every category gets about this many samples (x num_samples)."},
    )

    # ----- rewards -----
    image_rewards: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Image rewards/verifiers as `load_reward` specs (`vqascore:<model>`, `clip:<model>`, "
            "`python:<module>:<function>`, a registered name)."
        },
    )
    image_reward_weights: list[float] | None = field(default=None, metadata={"help": "One weight per image reward."})
    text_rewards: list[str] = field(
        default_factory=list, metadata={"help": "Text (reasoning) rewards as `load_reward` specs."}
    )
    text_reward_weights: list[float] | None = field(default=None, metadata={"help": "One weight per text reward."})
    reward_device: str | None = field(default=None, metadata={"help": "Device for model-based rewards."})
    metric: str = field(
        default="image_reward",
        metadata={
            "help": "Column that scores a sample: `image_reward`, `text_reward` or a reward column such as "
            "`image/vqascore`."
        },
    )
    threshold: float = field(default=0.5, metadata={"help": "A sample is correct when its metric is >= this."})
    confidence: float = field(default=0.95, metadata={"help": "Confidence level of the intervals."})

    # ----- outputs -----
    output_dir: str | None = field(default=None, metadata={"help": "Where each evaluation's folder is written."})
    name: str | None = field(
        default=None, metadata={"help": "Evaluation name (folders `<name>_<mode>`); default: the model's folder name."}
    )
    geneval_layout: bool = field(
        default=False,
        metadata={
            "help": "Also write the images in GenEval's layout (`geneval/<index>/samples/NNNN.png`, "
            "`metadata.jsonl`) for GenEval's own scorer."
        },
    )
    report_to: list[str] | None = field(
        default=None, metadata={"help": "Also log the samples table and images to these reporters (`wandb`)."}
    )

    def __post_init__(self):
        super().__post_init__()
        self.modes = list(self.modes or [self.mode])
        bad = [m for m in self.modes if m not in MODES]
        if bad:
            raise ValueError(f"modes must be among {list(MODES)}, got {bad}")
        if self.num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {self.num_samples}")
        if self.samples_per_category is not None and self.samples_per_category < 1:
            raise ValueError(f"samples_per_category must be >= 1, got {self.samples_per_category}")

    def sampling_config(self) -> SamplingConfig:
        return SamplingConfig(**{f.name: getattr(self, f.name) for f in fields(SamplingConfig)})


__all__ = ["EvaluationConfig"]
