"""The complete token vocabulary of the shapes world, in id order.

Fixing it in one place lets a tiny model be trained from scratch with an exact, closed vocabulary: special tokens
first, then the 8 image-code tokens (contiguous, so code i is id `IMAGE_TOKEN_OFFSET + i`), then every word that a
prompt or a reasoning plan can contain.
"""

from __future__ import annotations

from .palette import PALETTE
from .prompts import PROMPT_WORDS
from .reasoning import PLAN_WORDS

PAD_TOKEN = "<pad>"
BOS_TOKEN = "<bos>"
EOS_TOKEN = "<eos>"
UNK_TOKEN = "<unk>"
BOI_TOKEN = "<boi>"
"""Begin-of-image marker: the image codes follow."""
EOI_TOKEN = "<eoi>"
"""End-of-image marker."""

SPECIAL_TOKENS: tuple[str, ...] = (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN, BOI_TOKEN, EOI_TOKEN)
IMAGE_TOKENS: tuple[str, ...] = tuple(f"<img_{code}>" for code in range(len(PALETTE)))
IMAGE_TOKEN_OFFSET = len(SPECIAL_TOKENS)
"""Id of `<img_0>`; code i has id IMAGE_TOKEN_OFFSET + i."""

WORDS: tuple[str, ...] = tuple(dict.fromkeys((*PROMPT_WORDS, *PLAN_WORDS)))
"""Every prompt and plan word, each once, in first-seen order."""

VOCAB: tuple[str, ...] = (*SPECIAL_TOKENS, *IMAGE_TOKENS, *WORDS)
TOKEN_TO_ID: dict[str, int] = {token: index for index, token in enumerate(VOCAB)}
VOCAB_SIZE = len(VOCAB)


def image_token(code: int) -> str:
    """The token of image code `code`."""
    if not 0 <= code < len(IMAGE_TOKENS):
        raise ValueError(f"image code {code} out of range [0, {len(IMAGE_TOKENS) - 1}]")
    return IMAGE_TOKENS[code]
