"""A Hugging Face tokenizer for the shapes world, built in code (no download, no training).

Word-level over the closed vocabulary of `vocab.py`: each word or punctuation mark is one token, every sequence
starts with `<bos>`, and the 8 image codes are special tokens with contiguous ids, so a model's image head can map
code i <-> token id `IMAGE_TOKEN_OFFSET + i` with simple arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence

from tokenizers import AddedToken, Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace
from tokenizers.processors import TemplateProcessing
from transformers import PreTrainedTokenizerFast

from .codec import check_codes
from .vocab import (
    BOI_TOKEN,
    BOS_TOKEN,
    EOI_TOKEN,
    EOS_TOKEN,
    IMAGE_TOKEN_OFFSET,
    IMAGE_TOKENS,
    PAD_TOKEN,
    SPECIAL_TOKENS,
    TOKEN_TO_ID,
    UNK_TOKEN,
)


def build_shapes_tokenizer(model_max_length: int = 256) -> PreTrainedTokenizerFast:
    """The shapes tokenizer: `"a red square"` -> `[<bos>, a, red, square]`; save/load with the usual HF calls."""
    backend = Tokenizer(WordLevel(vocab=dict(TOKEN_TO_ID), unk_token=UNK_TOKEN))
    backend.pre_tokenizer = Whitespace()
    # Registered as added tokens so that "<img_3>" is matched whole before the pre-tokenizer splits on "<".
    backend.add_special_tokens(
        [AddedToken(token, special=True, normalized=False) for token in (*SPECIAL_TOKENS, *IMAGE_TOKENS)]
    )
    backend.post_processor = TemplateProcessing(
        single=f"{BOS_TOKEN} $A",
        pair=f"{BOS_TOKEN} $A $B:1",
        special_tokens=[(BOS_TOKEN, TOKEN_TO_ID[BOS_TOKEN])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        extra_special_tokens=[BOI_TOKEN, EOI_TOKEN, *IMAGE_TOKENS],
        model_max_length=model_max_length,
    )


def image_token_ids() -> list[int]:
    """Token ids of `<img_0>` ... `<img_7>`, in code order (contiguous)."""
    return [IMAGE_TOKEN_OFFSET + code for code in range(len(IMAGE_TOKENS))]


def codes_to_token_ids(codes: Sequence[int]) -> list[int]:
    """Token ids of 64 image codes (without `<boi>`/`<eoi>`)."""
    return [IMAGE_TOKEN_OFFSET + code for code in check_codes(codes)]


def token_ids_to_codes(token_ids: Sequence[int]) -> list[int]:
    """Image codes of 64 image-token ids; ValueError if any id is not an image token."""
    codes = []
    for position, token_id in enumerate(token_ids):
        code = int(token_id) - IMAGE_TOKEN_OFFSET
        if not 0 <= code < len(IMAGE_TOKENS):
            raise ValueError(f"token id {int(token_id)} at position {position} is not an image token")
        codes.append(code)
    return check_codes(codes)
