"""The tiny unified model of the shapes world: a small Llama over the shapes vocabulary, with its image description.

Its config carries ``unified_image`` (see ``trl_unified.models.causal_lm``), so the generic causal-LM adapter
handles it: begin/end-of-image are ``<boi>``/``<eoi>``, code i is the token ``<img_i>``, an image is 64 codes and
the ``shapes`` codec turns codes into pictures.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from .palette import NUM_CODES, PALETTE
from .vocab import BOI_TOKEN, EOI_TOKEN, VOCAB_SIZE

#: Where the shipped base model lives (built by ``python -m trl_unified.shapes.recipe``).
BASE_MODEL_DIR = Path(__file__).resolve().parent / "base_model"

UNIFIED_IMAGE = {
    "boi_token": BOI_TOKEN,
    "eoi_token": EOI_TOKEN,
    "image_token_template": "<img_{}>",
    "codebook_size": len(PALETTE),
    "num_image_tokens": NUM_CODES,
    "image_codec": "shapes",
}


def shapes_model_config(
    hidden_size: int = 128, num_layers: int = 4, num_heads: int = 4, max_length: int = 160
) -> LlamaConfig:
    """Config of the shapes model (``unified_image`` included)."""
    from .tokenizer import build_shapes_tokenizer

    tokenizer = build_shapes_tokenizer()
    config = LlamaConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=hidden_size,
        intermediate_size=4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_length,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    config.unified_image = dict(UNIFIED_IMAGE)
    return config


def build_shapes_model(seed: int = 0, **config_kwargs) -> tuple[LlamaForCausalLM, object]:
    """A freshly initialised shapes model and its tokenizer."""
    from .tokenizer import build_shapes_tokenizer

    torch.manual_seed(seed)
    return LlamaForCausalLM(shapes_model_config(**config_kwargs)), build_shapes_tokenizer()


def load_shapes_model(path: str | Path | None = None) -> tuple[LlamaForCausalLM, object]:
    """Load a shapes model and tokenizer with ``from_pretrained`` (default: the shipped base model)."""
    path = Path(path) if path is not None else BASE_MODEL_DIR
    if not (path / "config.json").exists():
        raise FileNotFoundError(
            f"No shapes model at {path}. Build the base model with `python -m trl_unified.shapes.recipe --output-dir {path}`."
        )
    return AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
