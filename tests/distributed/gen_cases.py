"""Models, prompts and settings shared by the ZeRO-3 generation worker and its 1-process reference."""

from trl_unified.generation.sampler import SamplingConfig
from trl_unified.generation.self_generation_config import SelfGenerationConfig
from trl_unified.testing.causal_lm import tiny_causal_lm
from trl_unified.testing.families import tiny_model

PROMPTS = ["red dot left", "blue square above", "green dot right of a square", "two red dots", "a blue dot below"]


def build(family: str):
    if family == "causal_lm":  # with an image codec: self-generation decodes its pictures
        return tiny_causal_lm(seed=0, image_codec="shapes", num_image_tokens=64)
    return tiny_model(family, seed=0)


def sampling_config(family: str) -> SamplingConfig:
    return SamplingConfig(max_text_tokens=5, seed=3, guidance_scale=2.0, decode_images=False)


def self_generation_config(output_dir: str) -> SelfGenerationConfig:
    return SelfGenerationConfig(
        output_dir=output_dir, num_samples=2, shard_size=1, max_text_tokens=4, seed=1, progress=False
    )
