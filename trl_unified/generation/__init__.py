"""Generation: the unified single-pass sampler (``sampler``) and offline self-generation (``self_generation``, with
its prompt tables, run state, shards, statistics and Hub push each in a module of their own)."""

from .hub import push_dataset_to_hub
from .prompts import load_prompts, prepare_prompts
from .run_state import GenerationConfigMismatch
from .sampler import Sample, SamplingConfig, generate_samples
from .seeds import prompt_seed
from .self_generation import regenerate_sample, self_generate
from .self_generation_config import SelfGenerationConfig
from .statistics import generation_statistics

__all__ = [
    "GenerationConfigMismatch",
    "Sample",
    "SamplingConfig",
    "SelfGenerationConfig",
    "generate_samples",
    "generation_statistics",
    "load_prompts",
    "prepare_prompts",
    "prompt_seed",
    "push_dataset_to_hub",
    "regenerate_sample",
    "self_generate",
]
