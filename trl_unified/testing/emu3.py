"""A tiny random Emu3 model and processor built offline from configs in code, and HF's own Emu3 image generation.

``tiny_emu3()`` returns a real ``Emu3ForConditionalGeneration`` (2-layer text model, 4-level VQ-VAE) and a real
``Emu3Processor`` (a byte-level BPE tokenizer holding Emu3's special and visual tokens, and an ``Emu3ImageProcessor``):

* the VQ model downsamples by 8 (``2 ** (len(channel_multiplier) - 1)``, the factor the processor hard-codes), so a
  32x32 image is ``4 x 4 = 16`` codes; the codebook has 16 codes;
* the generated image size is ``config.unified_image_generation = {"ratio": "1:1", "image_area": 1024}`` (4x4 codes),
  also set on the returned processor instance (``processor.image_area = 1024``), because the processor does not save
  ``ratio``/``image_area`` and would otherwise ask for its default 90x90;
* the tokenizer has the 256 byte tokens, then ``<|endoftext|>`` (pad), ``<|extra_0|>``, ``<image>``, ``<|extra_200|>``
  (end-of-line), ``<|extra_201|>`` (end-of-frame), ``<|extra_203|>`` (BOS), ``<|extra_204|>`` (EOS),
  ``<|image start|>``, ``<|image end|>``, ``<|image token|>`` and last the visual tokens ``<|visual token 000000|>``
  ... ``<|visual token 000015|>`` (so visual ids do not start at 0); the special tokens are named as attributes like
  the real tokenizer's (``boi_token``, ``eoi_token``, ``image_wrapper_token``, ``eof_token``, ``image_token``) and
  ``config.vocabulary_map`` is its vocabulary, as transformers' conversion script makes it;
* ``text_config.attention_dropout = 0`` (Emu3's default 0.1 would make train-mode log-probs differ from sampling).

Everything round-trips through ``save_pretrained``/``from_pretrained`` (model and processor).

HF's image generation, as the Emu3 model doc runs it, is ``emu3_reference_image_generation`` below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import (
    Emu3Config,
    Emu3ForConditionalGeneration,
    Emu3ImageProcessor,
    Emu3Processor,
    PreTrainedTokenizerFast,
)

from .tokenizers import byte_level_tokenizer

PAD, BOS, EOS = "<|endoftext|>", "<|extra_203|>", "<|extra_204|>"
IMAGE_TOKEN, EOL, EOF = "<image>", "<|extra_200|>", "<|extra_201|>"
BOI, EOI, IMAGE_WRAPPER = "<|image start|>", "<|image end|>", "<|image token|>"

CODEBOOK_SIZE = 16
SPATIAL_FACTOR = 8
IMAGE_TOKENS_PER_SIDE = 4
IMAGE_SIZE = IMAGE_TOKENS_PER_SIDE * SPATIAL_FACTOR  # 32 pixels
IMAGE_GENERATION = {"ratio": "1:1", "image_area": IMAGE_SIZE * IMAGE_SIZE}


def visual_token(code: int) -> str:
    """Emu3's name for VQ code ``code`` (``Emu3ImageVocabularyMapping`` parses the 6 digits back)."""
    return f"<|visual token {code:06d}|>"


def tiny_emu3_tokenizer(codebook_size: int = CODEBOOK_SIZE) -> PreTrainedTokenizerFast:
    """Byte-level BPE without merges (every text is encodable) plus Emu3's special and visual tokens; no BOS added."""
    specials = [PAD, "<|extra_0|>", IMAGE_TOKEN, EOL, EOF, BOS, EOS, BOI, EOI, IMAGE_WRAPPER]
    return byte_level_tokenizer(
        specials + [visual_token(i) for i in range(codebook_size)],
        bos=BOS,
        eos=EOS,
        pad=PAD,
        named_tokens={
            "image_token": IMAGE_TOKEN,
            "boi_token": BOI,
            "eoi_token": EOI,
            "image_wrapper_token": IMAGE_WRAPPER,
            "eof_token": EOF,
        },
    )


def tiny_emu3_processor(
    codebook_size: int = CODEBOOK_SIZE, tokens_per_side: int = IMAGE_TOKENS_PER_SIDE
) -> Emu3Processor:
    """The tokenizer above and an image processor that resizes every (square) image to 32x32 pixels (by default)."""
    side = tokens_per_side * SPATIAL_FACTOR
    image_processor = Emu3ImageProcessor(min_pixels=side * side, max_pixels=side * side, spatial_factor=SPATIAL_FACTOR)
    processor = Emu3Processor(image_processor=image_processor, tokenizer=tiny_emu3_tokenizer(codebook_size))
    processor.ratio = IMAGE_GENERATION["ratio"]
    processor.image_area = side * side
    return processor


def tiny_emu3(
    seed: int = 0,
    *,
    codebook_size: int = CODEBOOK_SIZE,
    tokens_per_side: int = IMAGE_TOKENS_PER_SIDE,
    **text_config_kwargs,
) -> tuple[Emu3ForConditionalGeneration, Emu3Processor]:
    """A tiny random ``Emu3ForConditionalGeneration`` (eval mode) and its ``Emu3Processor``.

    ``codebook_size``/``tokens_per_side`` and ``text_config_kwargs`` scale it (e.g. for benchmarks); a ``vocab_size``
    beyond the tokenizer's adds unused rows, as the real 184k vocabulary has far more ids than these tokens.
    """
    processor = tiny_emu3_processor(codebook_size, tokens_per_side)
    tokenizer = processor.tokenizer
    if text_config_kwargs.get("vocab_size", 0) < len(tokenizer):
        text_config_kwargs.pop("vocab_size", None)
    text_config = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "max_position_embeddings": 256,
        "attention_dropout": 0.0,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        **text_config_kwargs,
    }
    vq_config = {
        "codebook_size": codebook_size,
        "embed_dim": 4,
        "latent_channels": 4,
        "base_channels": 32,  # GroupNorm(32 groups) needs a multiple of 32
        "channel_multiplier": [1, 1, 1, 1],  # 4 levels: downsample by 8
        "num_res_blocks": 1,
        "attn_resolutions": [],
        "hidden_size": 32,
        "temporal_downsample_factor": 1,
    }
    config = Emu3Config(
        text_config=text_config,
        vq_config=vq_config,
        vocabulary_map=tokenizer.get_vocab(),
        unified_image_generation={"ratio": processor.ratio, "image_area": processor.image_area},
    )
    torch.manual_seed(seed)
    model = Emu3ForConditionalGeneration(config).eval()
    return model, processor


# ----- transformers' own image generation ---------------------------------------------------------------------------
@dataclass
class Emu3ReferenceGeneration:
    """What :func:`emu3_reference_image_generation` returns (batch dimension first everywhere)."""

    #: ``[B, h*w]`` sampled codes, row-major (``vocabulary_mapping.convert_bpe2img`` of the visual ids).
    codes: torch.Tensor
    #: ``[B, h*(w+1)+3]`` every id generated after ``<|image token|>``: rows of visual ids + EOL, EOF, EOI, EOS.
    generated_ids: torch.Tensor
    #: ``[B, P]`` the processor's prompt: BOS, prompt text, ``<|image start|>``, ``"{h}*{w}"``, ``<|image token|>``.
    prompt_ids: torch.Tensor
    #: ``[B, h*(w+1)+3, V]`` the scores ``generate`` sampled from (after CFG, the prefix constraint and warpers).
    scores: torch.Tensor
    height: int
    width: int


def emu3_prefix_allowed_tokens_fn(
    model: Emu3ForConditionalGeneration, processor: Emu3Processor, height: int, width: int
):
    """The model doc's ``prefix_allowed_tokens_fn``: visual tokens, EOL after each row, then EOF, EOI, EOS, pad."""
    visual_tokens = model.vocabulary_mapping.image_tokens
    tokenizer = processor.tokenizer
    image_wrapper_token_id = torch.tensor([tokenizer.image_wrapper_token_id], device=model.device)
    eoi_token_id = torch.tensor([tokenizer.eoi_token_id], device=model.device)
    eos_token_id = torch.tensor([tokenizer.eos_token_id], device=model.device)
    pad_token_id = torch.tensor([tokenizer.pad_token_id], device=model.device)
    eof_token_id = torch.tensor([tokenizer.eof_token_id], device=model.device)
    eol_token_id = tokenizer.encode(EOL, return_tensors="pt")[0]

    def prefix_allowed_tokens_fn(batch_id, input_ids):
        position = torch.nonzero(input_ids == image_wrapper_token_id, as_tuple=True)[0][0]
        offset = input_ids.shape[0] - position
        if offset % (width + 1) == 0:
            return (eol_token_id,)
        elif offset == (width + 1) * height + 1:
            return (eof_token_id,)
        elif offset == (width + 1) * height + 2:
            return (eoi_token_id,)
        elif offset == (width + 1) * height + 3:
            return (eos_token_id,)
        elif offset > (width + 1) * height + 3:
            return (pad_token_id,)
        else:
            return visual_tokens

    return prefix_allowed_tokens_fn


def emu3_reference_image_generation(
    model: Emu3ForConditionalGeneration,
    processor: Emu3Processor,
    prompt: str | Sequence[str],
    guidance_scale: float = 1.0,
    seed: int = 0,
    *,
    negative_prompt: str | None = None,
    negative_prompt_ids: torch.Tensor | None = None,
    negative_prompt_attention_mask: torch.Tensor | None = None,
    do_sample: bool = True,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    ratio: str | None = None,
    image_area: int | None = None,
) -> Emu3ReferenceGeneration:
    """Generate images with transformers' own Emu3 path (the ``Emu3`` model doc's "Image generation inference").

    Exactly::

        inputs = processor(text=prompts, padding=True, return_tensors="pt", return_for_image_generation=True,
                           ratio=ratio, image_area=image_area)     # both omitted when None (processor defaults)
        height, width = inputs.pop("image_sizes")[0]
        torch.manual_seed(seed)
        model.generate(**inputs, prefix_allowed_tokens_fn=<the doc's function>, max_new_tokens=height*(width+1)+3,
                       do_sample=do_sample, temperature=temperature, top_k=top_k, top_p=top_p,
                       guidance_scale=guidance_scale, negative_prompt_ids=..., negative_prompt_attention_mask=...,
                       return_dict_in_generate=True, output_scores=True)

    Arguments:

    * ``prompt``: one text or a list (batched with left padding, as the doc advises); BOS is prepended by the processor.
    * ``guidance_scale``: CFG weight; 1 (or 0/None in HF terms: here pass 1) disables CFG. With CFG, HF's
      ``UnbatchedClassifierFreeGuidanceLogitsProcessor`` runs a second, unbatched forward on the *unconditional
      context* and then on every generated token, and mixes ``scale * (cond - uncond) + uncond`` of the two
      **full-vocabulary** log-softmaxes; the prefix constraint then masks everything but the allowed ids. Restricted
      to the visual ids this equals CFG of the two visual-slice log-softmaxes (the normalisers are constants), so a
      sampler that guides on the visual slice draws from the same distribution.
    * unconditional context (only read when ``guidance_scale != 1``), first that applies:
      ``negative_prompt_ids`` (+ ``negative_prompt_attention_mask``, default all ones) as given, e.g. a sampler's
      own unconditional row, ``[BOS, pad..., <|image start|>, header..., <|image token|>]``;
      ``negative_prompt``: ``processor(text=[negative_prompt] * B, padding=True)`` i.e. BOS + text *without* the
      image header, as the doc does; neither: HF's default, the last prompt token alone (``<|image token|>``).
      The unconditional branch gets no ``position_ids`` (positions ``0..L-1`` even where its mask is 0).
    * ``seed``: ``torch.manual_seed(seed)`` right before ``generate`` (sampling uses the global RNG).
    * ``do_sample``/``temperature``/``top_k``/``top_p``: passed explicitly so the model's generation config does not
      add HF's defaults (``top_k=50``); ``top_k=0`` and ``top_p=1.0`` disable them. Warpers run after CFG and the
      prefix constraint. ``do_sample=False`` takes the argmax of the guided scores.
    * ``ratio``/``image_area``: the generated size; ``None`` uses the processor's (instance) defaults. Use
      ``Emu3Adapter(...).ratio``/``.image_area`` to match an adapter.

    Returns an :class:`Emu3ReferenceGeneration` (``codes`` ``[B, h*w]`` first).
    """
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    size_kwargs = {key: value for key, value in (("ratio", ratio), ("image_area", image_area)) if value is not None}
    tokenizer = processor.tokenizer
    padding_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        inputs = processor(
            text=prompts, padding=True, return_tensors="pt", return_for_image_generation=True, **size_kwargs
        )
        if negative_prompt_ids is None and negative_prompt is not None and guidance_scale != 1:
            negative = processor(text=[negative_prompt] * len(prompts), padding=True, return_tensors="pt")
            negative_prompt_ids, negative_prompt_attention_mask = negative["input_ids"], negative["attention_mask"]
    finally:
        tokenizer.padding_side = padding_side
    height, width = (int(v) for v in inputs.pop("image_sizes")[0])
    inputs = inputs.to(model.device)
    cfg_kwargs = {}
    if guidance_scale != 1:
        cfg_kwargs["guidance_scale"] = guidance_scale
        if negative_prompt_ids is not None:
            negative_prompt_ids = torch.as_tensor(negative_prompt_ids, dtype=torch.long).reshape(len(prompts), -1)
            if negative_prompt_attention_mask is None:
                negative_prompt_attention_mask = torch.ones_like(negative_prompt_ids)
            cfg_kwargs["negative_prompt_ids"] = negative_prompt_ids.to(model.device)
            cfg_kwargs["negative_prompt_attention_mask"] = (
                torch.as_tensor(negative_prompt_attention_mask).reshape(len(prompts), -1).to(model.device)
            )

    torch.manual_seed(seed)
    out = model.generate(
        **inputs,
        prefix_allowed_tokens_fn=emu3_prefix_allowed_tokens_fn(model, processor, height, width),
        max_new_tokens=height * (width + 1) + 3,
        do_sample=do_sample,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        return_dict_in_generate=True,
        output_scores=True,
        **cfg_kwargs,
    )
    prompt_length = inputs["input_ids"].shape[1]
    generated = out.sequences[:, prompt_length:].cpu()
    rows = generated[:, :-3].reshape(len(prompts), height, width + 1)
    codes = model.vocabulary_mapping.convert_bpe2img(rows).reshape(len(prompts), -1).long()
    return Emu3ReferenceGeneration(
        codes=codes,
        generated_ids=generated,
        prompt_ids=inputs["input_ids"].cpu(),
        scores=torch.stack(out.scores, dim=1).cpu(),
        height=height,
        width=width,
    )
