"""A tiny random Janus model and processor, built offline from configs in code (for tests and examples).

``tiny_janus()`` returns a real ``JanusForConditionalGeneration`` (Llama language model, SigLIP-style vision tower,
VQ-VAE, generation embeddings/aligner/head) and a real ``JanusProcessor`` (a byte-level BPE tokenizer with Janus's
special tokens and a ``JanusImageProcessor``), small enough to run on a CPU in milliseconds:

* images are 16x16 pixels, the vision tower cuts them in 4x4 patches and the VQ model downsamples by 4, so one image
  is ``4 * 4 = 16`` codes (``config.vision_config.num_image_tokens``, which is what image generation produces);
* the codebook has 32 codes (``config.vq_config.num_embeddings``);
* the tokenizer has the 256 byte tokens, then (ids 256-261) ``<｜begin▁of▁sentence｜>`` (BOS, prepended by the
  tokenizer), ``<｜end▁of▁sentence｜>`` (EOS), ``<｜▁pad▁｜>`` (pad), ``<image_placeholder>``
  (``config.image_token_id``), ``<begin_of_image>`` (``tokenizer.boi_token``) and ``<end_of_image>``
  (``tokenizer.eoi_token``), named as in the real checkpoints.

Image generation with transformers' own sampler (what a custom sampler is compared against)::

    model, processor = tiny_janus()
    inputs = processor(text=["a red square"], generation_mode="image", return_tensors="pt")
    # input_ids = [BOS, ...prompt bytes..., <begin_of_image>]: the processor appends begin-of-image.
    codes = model.generate(
        **inputs,                     # input_ids AND attention_mask: generation crashes without the mask
        generation_mode="image",
        do_sample=True,               # or False for greedy (argmax of the guided scores)
        guidance_scale=2.0,           # must be > 1: with 1 (or 0) no CFG merge happens and generate crashes
        # no max_new_tokens needed: the image loop always makes config.vision_config.num_image_tokens codes
    )                                 # -> LongTensor [batch, 16] of codes in [0, 32)
    images = JanusAdapter(model, processor).decode_images(model, codes)  # PIL images, 16x16
    # (= model.decode_image_tokens(codes), [batch, 16, 16, 3] in about [-1, 1], then the image processor's postprocess
    # fed channels-first: without torchvision, processor.post_process_multimodal_output(..., generation_mode="image")
    # fails on the channels-last tensor in transformers 5.24.)

Sampling draws one ``torch.multinomial`` per code from ``softmax(uncond + guidance_scale * (cond - uncond))`` over the
``model.model.generation_head`` outputs (no other logits processor acts on the 32 codes), so a sampler seeded alike
reproduces the codes exactly (checked for one unpadded prompt in ``tests/models/test_janus_adapter.py``).
``model.generation_config`` carries what the image loop reads: ``bos_token_id`` (256) and ``pad_token_id`` (258) for
the unconditional CFG row (BOS and begin-of-image kept, every other token replaced by pad),
``generation_kwargs["boi_token_id"]`` (260) and a default ``guidance_scale`` (5.0, used when the call gives none).
Everything round-trips through ``save_pretrained``/``from_pretrained``.
"""

from __future__ import annotations

import torch
from transformers import (
    GenerationConfig,
    JanusConfig,
    JanusForConditionalGeneration,
    JanusProcessor,
    LlamaConfig,
    PreTrainedTokenizerFast,
)
from transformers.utils import is_torchvision_available

from .tokenizers import byte_level_tokenizer

BOS, EOS, PAD = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>"
IMAGE_TOKEN, BOI, EOI = "<image_placeholder>", "<begin_of_image>", "<end_of_image>"

IMAGE_SIZE = 16
PATCH_SIZE = 4
CODEBOOK_SIZE = 32
NUM_IMAGE_TOKENS = (IMAGE_SIZE // PATCH_SIZE) ** 2


def tiny_janus_tokenizer(filler: int = 0) -> PreTrainedTokenizerFast:
    """Byte-level BPE without merges (every text is encodable) plus Janus's special tokens; BOS is prepended.

    ``filler`` unused ids go between the bytes and the special tokens (a codebook larger than the byte vocabulary
    needs end-of-image outside it, as in the real checkpoints).
    """
    return byte_level_tokenizer(
        [BOS, EOS, PAD, IMAGE_TOKEN, BOI, EOI],
        bos=BOS,
        eos=EOS,
        pad=PAD,
        prepend_bos=True,
        filler=filler,
        named_tokens={"image_token": IMAGE_TOKEN, "boi_token": BOI, "eoi_token": EOI},
    )


def tiny_janus_config(
    tokenizer: PreTrainedTokenizerFast,
    *,
    hidden_size: int = 32,
    intermediate_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    vocab_size: int | None = None,
    codebook_size: int = CODEBOOK_SIZE,
    tokens_per_side: int = IMAGE_SIZE // PATCH_SIZE,
) -> JanusConfig:
    """The tiny config; the keywords scale it (benchmarks build e.g. a Janus-Pro-1B-shaped model with few layers)."""
    text_hidden = hidden_size
    image_size = tokens_per_side * PATCH_SIZE
    text_config = LlamaConfig(
        vocab_size=max(vocab_size or 0, len(tokenizer)),
        hidden_size=text_hidden,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=max(256, 2 * tokens_per_side**2),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    vision_config = {
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "image_size": image_size,
        "patch_size": PATCH_SIZE,
        "mlp_ratio": 2.0,
        "projection_dim": text_hidden,  # the aligner maps vision features into the language model
        "depth": 2,
        "num_image_tokens": tokens_per_side**2,
    }
    vq_config = {
        "embed_dim": 8,
        "num_embeddings": codebook_size,
        "latent_channels": 32,  # GroupNorm(32) everywhere: channel counts are multiples of 32
        "base_channels": 32,
        "channel_multiplier": [1, 1, 1],  # 3 levels: downsample by 4, 16 px -> 4x4 codes
        "num_res_blocks": 1,
        "projection_dim": text_hidden,
        "image_token_embed_dim": text_hidden,
        "num_hidden_layers": 2,
    }
    return JanusConfig(
        text_config=text_config,
        vision_config=vision_config,
        vq_config=vq_config,
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
    )


def tiny_janus(seed: int = 0, **sizes) -> tuple[JanusForConditionalGeneration, JanusProcessor]:
    """A tiny random Janus model (eval mode, float32) and its processor; see the module docstring.

    ``sizes`` are :func:`tiny_janus_config`'s keywords (hidden size, layers, codebook, image tokens per side...).
    """
    tokenizer = tiny_janus_tokenizer(filler=max(0, sizes.get("codebook_size", 0) - 256))
    config = tiny_janus_config(tokenizer, **sizes)
    num_image_tokens = int(config.vision_config.num_image_tokens)
    image_size = int(config.vision_config.image_size)
    torch.manual_seed(seed)
    model = JanusForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        generation_kwargs={"boi_token_id": tokenizer.convert_tokens_to_ids(BOI)},
        guidance_scale=5.0,
        max_new_tokens=num_image_tokens,
    )
    # The torchvision backend is the default; without torchvision, transformers falls back to the PIL one (and warns).
    if is_torchvision_available():
        from transformers import JanusImageProcessor as image_processor_class
    else:
        from transformers import JanusImageProcessorPil as image_processor_class
    image_processor = image_processor_class(
        size={"height": image_size, "width": image_size},
        min_size=PATCH_SIZE,
        image_mean=[0.5, 0.5, 0.5],  # Janus's VQ model works in [-1, 1]
        image_std=[0.5, 0.5, 0.5],
    )
    processor = JanusProcessor(image_processor=image_processor, tokenizer=tokenizer, num_image_tokens=num_image_tokens)
    return model, processor
