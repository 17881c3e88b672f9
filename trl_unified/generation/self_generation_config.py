"""Configuration of offline self-generation (`trl-unified generate`, :func:`~trl_unified.generation.self_generate`).

:class:`SelfGenerationConfig` *is* a :class:`~trl_unified.generation.sampler.SamplingConfig` (it inherits every sampler
field, flat, so ``--temperature 0.8 --guidance_scale 3`` work on the command line and as top-level YAML keys) plus
what self-generation adds: the model, the prompts source, ``num_samples`` per prompt, the rewards, the output folder
and its shards, and the Hub push. Every field has help text and is parsable by ``trl.TrlParser``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from .sampler import SamplingConfig

DTYPES = (None, "auto", "float32", "bfloat16", "float16")


@dataclass
class SelfGenerationConfig(SamplingConfig):
    """Everything :func:`~trl_unified.generation.self_generate` and ``trl-unified generate`` need.

    The sampler settings (``mode``, ``max_text_tokens``, ``temperature``, ``top_k``, ``top_p``, ``image_temperature``,
    ``image_top_k``, ``image_top_p``, ``guidance_scale``, ``batch_size``, ``seed``, ``rng``, ``decode_images``) are the
    fields of :class:`~trl_unified.generation.sampler.SamplingConfig`, inherited flat; :meth:`sampling_config` returns
    them as a ``SamplingConfig``. ``seed`` is the run's base seed: each prompt is sampled with its own seed derived
    from it and the prompt's ``prompt_id`` (stored per row in the ``seed`` column).
    """

    # ----- model -----
    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Model to sample from: a Hub id or a local folder (loaded with its family's class)."},
    )
    model_revision: str | None = field(
        default=None, metadata={"help": "Model revision (branch, tag or commit) for a Hub id; default: main."}
    )
    model_adapter: str | None = field(
        default=None,
        metadata={"help": "Model family adapter (`janus`, `emu3`, `causal_lm`); detected from the model if unset."},
    )
    dtype: str | None = field(
        default=None,
        metadata={
            "help": "Dtype to load the model in (`float32`, `bfloat16`, `float16`, `auto`); default: the "
            "checkpoint's `from_pretrained` default."
        },
    )

    # ----- prompts -----
    prompts: str | None = field(
        default=None,
        metadata={
            "help": "Prompts source: a datasets dataset (Hub id or `save_to_disk` folder), a JSONL/JSON/Parquet/CSV "
            "file (a `prompt` column, optional `prompt_id` and any other columns, carried through), or a `.txt` "
            "file with one prompt per line (blank lines skipped)."
        },
    )
    prompts_split: str = field(default="train", metadata={"help": "Split of a datasets prompts source."})
    prompts_config: str | None = field(
        default=None, metadata={"help": "Configuration (subset) name of a Hub prompts dataset."}
    )
    prompt_column: str = field(
        default="prompt", metadata={"help": "Column holding the prompt text (renamed to `prompt` in the output)."}
    )
    prompt_id_column: str = field(
        default="prompt_id",
        metadata={
            "help": "Column holding a stable, unique id per prompt (renamed to `prompt_id`); when the source has "
            "none, the prompt's index in the source is its id."
        },
    )
    max_prompts: int | None = field(
        default=None, metadata={"help": "Use only the first N prompts of the source (all if unset)."}
    )

    # ----- samples -----
    num_samples: int = field(default=4, metadata={"help": "K: samples generated per prompt."})

    # ----- rewards -----
    text_rewards: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Text (reasoning) rewards, as `load_reward` specs: `python:<module>:<function>`, "
            "`judge:<model path>`, or a registered name. Each becomes a `text/<name>` column; their weighted sum "
            "is `text_reward`."
        },
    )
    text_reward_weights: list[float] | None = field(
        default=None,
        metadata={"help": "One weight per text reward, in order (default 1.0 each); `text_reward`: weighted sum."},
    )
    image_rewards: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Image rewards, as `load_reward` specs: `clip:<model path>`, `vqascore:<model path>`, "
            "`python:<module>:<function>`, or a registered name. Each becomes an `image/<name>` column; their "
            "weighted sum is `image_reward`."
        },
    )
    image_reward_weights: list[float] | None = field(
        default=None,
        metadata={"help": "One weight per image reward, in order (default 1.0 each); `image_reward`: weighted sum."},
    )
    no_rewards: bool = field(
        default=False,
        metadata={
            "help": "Generate without any reward on purpose (`text_reward`/`image_reward` are then 0.0); without it, "
            "`trl-unified generate` with no text_rewards and no image_rewards is refused."
        },
    )
    reward_device: str | None = field(
        default=None,
        metadata={"help": "Device for model-based rewards (clip/vqascore/judge); default: the reward's own choice."},
    )

    # ----- output -----
    output_dir: str | None = field(
        default=None,
        metadata={
            "help": "Output folder: `shards/` (written as generation goes), the assembled dataset "
            "(`save_to_disk`, loadable with `trl-unified train --dataset_name <output_dir>`), "
            "`trl_unified_run.json` (the run file) and the dataset card `README.md`. It must be new, empty, or "
            "hold a run of this package: a folder with other files is refused (nothing of yours is replaced)."
        },
    )
    shard_size: int = field(
        default=64,
        metadata={"help": "Prompts per shard: the unit that is written atomically, resumed and spread over processes."},
    )
    overwrite: bool = field(
        default=False,
        metadata={
            "help": "Start over in an output folder that holds a run with other settings (otherwise refused): "
            "deletes that run's files (shards, dataset files, run file, card) and nothing else; a run with the same "
            "settings is always resumed."
        },
    )
    progress: bool = field(default=True, metadata={"help": "Show a progress bar (main process)."})
    report_to: list[str] | None = field(
        default=None,
        metadata={"help": "Also log a samples table with images to these reporters (`wandb`) when the run is done."},
    )

    # ----- Hub -----
    push_to_hub: bool = field(
        default=False, metadata={"help": "Push the dataset and its card to the Hub when generation is complete."}
    )
    hub_dataset_id: str | None = field(
        default=None,
        metadata={"help": "Hub dataset repo (`user/name`); default: the output folder's name in your namespace."},
    )
    private: bool | None = field(
        default=None, metadata={"help": "Create the Hub dataset repo private (ignored if it already exists)."}
    )
    license: str | None = field(
        default=None,
        metadata={
            "help": "Licence of the dataset, for its card (a Hub licence id: `apache-2.0`, `cc-by-4.0`, `other`, ...); "
            "default: the licence in the model's card, when it names one."
        },
    )

    def __post_init__(self):
        super().__post_init__()
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {list(DTYPES)}, got {self.dtype!r}")
        if self.num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {self.num_samples}")
        if self.shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {self.shard_size}")
        if self.max_prompts is not None and self.max_prompts < 0:
            raise ValueError(f"max_prompts must be >= 0, got {self.max_prompts}")
        if self.rng != "row":
            raise ValueError(
                f"self-generation needs rng='row' (got rng={self.rng!r}): each prompt is sampled from its own seed, "
                "so a sample never depends on its shard, batch or process; rng='batch' (transformers' own draws, for "
                "parity checks with `generate_samples`) would tie samples to the batching"
            )
        if self.seed is None:
            raise ValueError(
                "self-generation needs an integer seed: every shard must be reproducible from the arguments, so "
                "that a restarted run resumes where it stopped"
            )
        self.text_rewards = list(self.text_rewards or [])
        self.image_rewards = list(self.image_rewards or [])
        for kind in ("text", "image"):
            specs, weights = getattr(self, f"{kind}_rewards"), getattr(self, f"{kind}_reward_weights")
            if weights is not None:
                weights = [float(w) for w in weights]
                setattr(self, f"{kind}_reward_weights", weights)
                if specs and len(weights) != len(specs):  # without specs they weigh the callables given in Python
                    raise ValueError(f"got {len(weights)} {kind}_reward_weights for {len(specs)} {kind}_rewards")

    def sampling_config(self) -> SamplingConfig:
        """The sampler settings of this config as a plain :class:`SamplingConfig`."""
        return SamplingConfig(**{f.name: getattr(self, f.name) for f in fields(SamplingConfig)})

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def sampling_field_names() -> list[str]:
    """Names of the sampler fields (those of :class:`SamplingConfig`)."""
    return [f.name for f in fields(SamplingConfig)]


__all__ = ["SelfGenerationConfig", "sampling_field_names"]
