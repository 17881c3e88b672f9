"""Tokenizers for tiny test models, built in code: every text is encodable, special tokens are named as in the real
checkpoints, so the families' own processors and the adapters see what they would see on a real model."""

from __future__ import annotations

from collections.abc import Sequence

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast


def byte_level_tokenizer(
    special_tokens: Sequence[str],
    *,
    bos: str,
    eos: str,
    pad: str,
    prepend_bos: bool = False,
    filler: int = 0,
    named_tokens: dict[str, str] | None = None,
) -> PreTrainedTokenizerFast:
    """Byte-level BPE without merges (the 256 byte symbols are ids 0-255), then ``special_tokens`` in order.

    ``filler`` unused ids (``<filler_i>``) come between the bytes and the special tokens; ``prepend_bos`` adds ``bos`` in front of every encoded text (as Janus's tokenizer does); ``named_tokens`` become
    tokenizer attributes (``tokenizer.boi_token`` ...), like the real tokenizers' extra special tokens.
    """
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {symbol: i for i, symbol in enumerate(alphabet)}
    vocab.update({f"<filler_{i}>": len(alphabet) + i for i in range(filler)})
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(list(special_tokens))
    if prepend_bos:
        bos_id = backend.token_to_id(bos)
        backend.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=bos,
        eos_token=eos,
        pad_token=pad,
        padding_side="left",
        extra_special_tokens=dict(named_tokens or {}),
    )
