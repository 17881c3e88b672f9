"""A tiny random causal LM whose vocabulary holds image codes: the generic adapter's test model."""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SPECIAL = ["<pad>", "<bos>", "<eos>", "<unk>", "<boi>", "<eoi>"]
WORDS = (
    "a an the red green blue dot square draw plan : ; . left right of above below at row col and one two three".split()
)


def tiny_tokenizer(codebook_size: int = 8) -> PreTrainedTokenizerFast:
    """A word-level tokenizer: special tokens, a few words, then ``<img_0>..<img_{K-1}>`` (contiguous ids)."""
    vocab = {token: i for i, token in enumerate(SPECIAL + WORDS + [f"<img_{i}>" for i in range(codebook_size)])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", vocab["<bos>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=["<boi>", "<eoi>"],
    )


def tiny_causal_lm(
    seed: int = 0, codebook_size: int = 8, num_image_tokens: int = 16, image_codec: str | None = None, **config_kwargs
) -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast]:
    """A 2-layer Llama with ``config.unified_image`` set, and its tokenizer."""
    tokenizer = tiny_tokenizer(codebook_size)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
        **config_kwargs,
    )
    config.unified_image = {
        "boi_token": "<boi>",
        "eoi_token": "<eoi>",
        "image_token_template": "<img_{}>",
        "codebook_size": codebook_size,
        "num_image_tokens": num_image_tokens,
        "image_codec": image_codec,
    }
    return LlamaForCausalLM(config), tokenizer
