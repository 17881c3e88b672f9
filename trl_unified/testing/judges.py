"""Tiny random judge models (CLIP, Llava, a Llama text judge), built in code and saved to local folders, so the
reward classes run through the real ``from_pretrained`` path without any download."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

WORDS = (
    "Yes No yes no Does this image show Please answer or Answer a an the red green blue circle "
    'square triangle two three left of right above below draw first then USER ASSISTANT : . ? " , '
    "Image request Plan Is plan faithful and correct for drawing exactly what asks"
).split()
SPECIALS = ["<pad>", "<unk>", "<s>", "</s>", "<image>"]

CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'].upper() }}: "
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>\n{% else %}{{ c['text'] }}{% endif %}{% endfor %}"
    "{% endif %} {% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def word_tokenizer(chat_template: str | None = None):
    """A WordLevel tokenizer over a small fixed vocabulary (``<image>`` is a special token)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(SPECIALS + list(dict.fromkeys(WORDS)))}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        extra_special_tokens={"image_token": "<image>"},
    )
    if chat_template is not None:
        tok.chat_template = chat_template
    return tok


def tiny_llama_config(vocab_size: int):
    from transformers import LlamaConfig

    # A large init range makes the random next-token distribution far from uniform, so scores
    # differ between inputs and equality checks are meaningful.
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
        initializer_range=0.5,
    )


def random_images(n: int, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (20 + 3 * i, 24, 3), dtype=np.uint8)) for i in range(n)]


def save_tiny_clip(path) -> str:
    """A CLIP model + processor (byte-level BPE without merges, 16x16 images) saved in ``path``."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPConfig, CLIPModel, CLIPProcessor, CLIPTokenizer
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    torch.manual_seed(0)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in sorted(ByteLevel.alphabet()):  # byte-level BPE without merges: one token per char
        vocab[ch] = len(vocab)
        vocab[ch + "</w>"] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=64,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        ),
        vision_config=dict(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=16,
            patch_size=8,
        ),
        projection_dim=8,
    )
    CLIPModel(config).save_pretrained(path)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(path)
    return path


def save_tiny_llava(path, chat_template: str | None = CHAT_TEMPLATE) -> str:
    """A Llava model + processor (4 image tokens per 16x16 image) saved in ``path``; ``chat_template=None`` for the
    plain-prompt path."""
    from transformers import CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    torch.manual_seed(0)
    tokenizer = word_tokenizer()
    # 16x16 images, 8x8 patches: 4 patches (+1 CLS, dropped by the "default" strategy) = 4 image tokens.
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}),
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=chat_template,
    )
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=16,
            patch_size=8,
            initializer_factor=5.0,
        ),
        text_config=tiny_llama_config(len(tokenizer)),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_seq_length=4,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    LlavaForConditionalGeneration(config).save_pretrained(path)
    processor.save_pretrained(path)
    return path


def save_tiny_text_judge(path) -> str:
    """A Llama text judge with a chat template saved in ``path``."""
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    tokenizer = word_tokenizer(CHAT_TEMPLATE)
    LlamaForCausalLM(tiny_llama_config(len(tokenizer))).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
