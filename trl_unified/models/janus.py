"""Adapter for DeepSeek Janus / Janus-Pro (``transformers.JanusForConditionalGeneration``).

Janus keeps image codes out of the text vocabulary. A generated image is read and written through its own path:

* input: a code ``c`` is embedded by ``model.prepare_embeddings_for_image_generation`` (``generation_embeddings`` then
  ``generation_aligner``), never by the text embedding table; so image positions carry the *code itself* as input id;
* output: codebook logits come from ``model.model.generation_head`` applied to the language model's final (post-norm)
  hidden state; ``lm_head`` covers the text vocabulary only (so ``forward(labels=...)`` is wrong for image tokens).

A sequence is ``[BOS prompt][reasoning]<begin_of_image>[num_image_tokens codes]<end_of_image>``. What transformers'
own image generation (``model.generate(..., generation_mode="image")``) does, and what this adapter mirrors:

* the prompt is the processor's ``processor(text=..., generation_mode="image")``, i.e. the tokenizer's ids (BOS first)
  with ``<begin_of_image>`` appended; ``generate`` reads begin-of-image from
  ``generation_config.generation_kwargs["boi_token_id"]`` (the tokenizer's ``boi_token``, checked at construction);
* it samples exactly ``config.vision_config.num_image_tokens`` codes (``vq_config.num_patches ** 2``, checked at
  construction) with ``generation_head`` and stops: it feeds no end-of-image. ``<end_of_image>`` (the processor's
  ``image_end_token``, what closes an image in Janus's understanding format) is the single forced token of
  ``image_layout()``: fed after the codes, never trained on or sampled, so it only matters to text that follows;
* its classifier-free-guidance row keeps BOS and begin-of-image and replaces every other prompt token by
  ``generation_config.pad_token_id``: exactly ``UnifiedModelAdapter.unconditional_ids`` (not overridden).

The forced end-of-image is a *text* id at an ``IMAGE``-modality position (``image_segment`` marks every position
after begin-of-image ``IMAGE``). ``input_embeddings`` therefore routes it through the text embeddings; this is
unambiguous because its id is outside the codebook (checked at construction).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from transformers import JanusForConditionalGeneration

from .base import IMAGE, UnifiedModelAdapter, unwrap_model

#: Token names used by the Janus checkpoints, when a tokenizer does not name them as attributes.
DEFAULT_BOI_TOKEN = "<begin_of_image>"
DEFAULT_EOI_TOKEN = "<end_of_image>"


class JanusAdapter(UnifiedModelAdapter):
    """``JanusForConditionalGeneration`` with its ``JanusProcessor`` (or just its tokenizer, without image I/O)."""

    family = "janus"
    pipeline_tag = "any-to-any"  # it also reads images (image-text-to-text)
    model_class = JanusForConditionalGeneration
    #: The language model's attention/MLP projections and the image-generation path (generation aligner and head).
    #: Not the vision tower (its attention also has q/k/v_proj), its aligner, the VQ model or the embeddings.
    lora_target_modules = (
        r"(?:.*\.)?(?:"
        r"language_model\.layers\.\d+\."
        r"(?:self_attn\.(?:q_proj|k_proj|v_proj|o_proj)|mlp\.(?:gate_proj|up_proj|down_proj))"
        r"|generation_aligner\.(?:fc1|hidden_layers\.\d+)"
        r"|generation_head\.(?:proj_out|vision_head)"
        r")"
    )

    def __init__(self, model: nn.Module, processing_class: Any):
        super().__init__(model, processing_class)
        core = unwrap_model(model)
        self.image_processor = getattr(processing_class, "image_processor", None)
        self.boi_token_id = self.token_id(DEFAULT_BOI_TOKEN, "boi_token")
        self.eoi_token_id = self.token_id(DEFAULT_EOI_TOKEN, "eoi_token")

        # transformers' image generation reads begin-of-image from the generation config: it must agree.
        generation_kwargs = getattr(getattr(core, "generation_config", None), "generation_kwargs", None) or {}
        generation_boi = generation_kwargs.get("boi_token_id")
        if generation_boi is not None and int(generation_boi) != self.boi_token_id:
            warnings.warn(
                f"generation_config.generation_kwargs['boi_token_id']={generation_boi} differs from the tokenizer's "
                f"begin-of-image id {self.boi_token_id}; `generate(generation_mode='image')` will not match this adapter.",
                stacklevel=2,
            )

        # `generate` makes vision_config.num_image_tokens codes; the VQ decoder wants vq_config.num_patches ** 2.
        self._num_image_tokens = int(self.config.vision_config.num_image_tokens)
        grid = int(self.config.vq_config.num_patches)
        if grid * grid != self._num_image_tokens:
            raise ValueError(
                f"Inconsistent Janus config: vision_config.num_image_tokens={self._num_image_tokens} but the VQ model "
                f"decodes vq_config.num_patches ** 2 = {grid * grid} codes per image."
            )
        self._codebook_size = int(self.config.vq_config.num_embeddings)
        if self.eoi_token_id < self._codebook_size:
            raise ValueError(
                f"end-of-image id {self.eoi_token_id} is inside the codebook [0, {self._codebook_size}): it could not be told "
                "apart from an image code at an image position."
            )

    # ----- vocabulary and layout -------------------------------------------------------------------------------------
    @property
    def num_image_tokens(self) -> int:
        return self._num_image_tokens

    @property
    def codebook_size(self) -> int:
        return self._codebook_size

    def image_layout(self) -> list[int | None]:
        return [None] * self.num_image_tokens + [self.eoi_token_id]

    # ----- model plumbing -------------------------------------------------------------------------------------------
    def input_embeddings(self, model: nn.Module, input_ids: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
        """Text ids through the text embeddings, codes through the generation embeddings + aligner.

        Image-modality positions holding end-of-image (a forced text token) use the text embeddings. Each path is fed
        a harmless id (0) where the other path's ids sit, so no lookup is out of range.
        """
        is_code = (modality == IMAGE) & (input_ids != self.eoi_token_id)
        text_ids = torch.where(is_code, torch.zeros_like(input_ids), input_ids)
        code_ids = torch.where(is_code, input_ids, torch.zeros_like(input_ids))
        text_embeds = model.get_input_embeddings()(text_ids)
        image_embeds = model.prepare_embeddings_for_image_generation(code_ids).to(text_embeds.dtype)
        return torch.where(is_code.unsqueeze(-1), image_embeds, text_embeds)

    def text_logits(self, model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
        return model.lm_head(hidden)

    def image_logits(self, model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
        return model.model.generation_head(hidden)

    # forward_hidden: the base version is right for Janus. `JanusForConditionalGeneration.forward` passes
    # `output_hidden_states` down to the Llama language model, whose `hidden_states[-1]` is its `last_hidden_state`
    # (after the final RMSNorm) -- the very tensor `generate(generation_mode="image")` feeds to `generation_head`.

    # ----- images ----------------------------------------------------------------------------------------------------
    def _require_image_processor(self) -> Any:
        if self.image_processor is None:
            raise ValueError("Encoding/decoding Janus images needs the JanusProcessor (with its image processor).")
        return self.image_processor

    @torch.no_grad()
    def encode_images(self, model: nn.Module, images: Sequence[Any]) -> torch.Tensor:
        """PIL images -> codes ``[N, num_image_tokens]``: the processor's resize/pad/normalize, then the VQ encoder."""
        image_processor = self._require_image_processor()
        vqmodel = unwrap_model(model).model.vqmodel
        images = [image.convert("RGB") if hasattr(image, "convert") else image for image in images]
        pixel_values = image_processor(images=images, return_tensors="pt")["pixel_values"]
        weight = next(vqmodel.parameters())
        pixel_values = pixel_values.to(device=weight.device, dtype=weight.dtype)
        codes = vqmodel.encode(pixel_values).image_tokens  # [N * h * w], row-major per image
        codes = codes.view(len(images), -1)
        if codes.shape[1] != self.num_image_tokens:
            raise ValueError(
                f"The VQ model made {codes.shape[1]} codes per image, expected {self.num_image_tokens}; are the images "
                "processed at the model's image size?"
            )
        return codes.long()

    @torch.no_grad()
    def decode_images(self, model: nn.Module, codes: torch.Tensor) -> list[Any]:
        """Codes ``[N, num_image_tokens]`` -> PIL images: ``decode_image_tokens``, then the processor's postprocess."""
        image_processor = self._require_image_processor()
        core = unwrap_model(model)
        codes = torch.as_tensor(codes, dtype=torch.long, device=core.model.vqmodel.quantize.embedding.weight.device)
        if codes.ndim != 2 or codes.shape[1] != self.num_image_tokens:
            raise ValueError(f"expected codes of shape [N, {self.num_image_tokens}], got {tuple(codes.shape)}")
        pixels = core.decode_image_tokens(codes)  # [N, H, W, C], about [-1, 1]
        # Channels first: the PIL backend's postprocess normalizes as channels-first whatever it is given.
        pixels = pixels.permute(0, 3, 1, 2).float().cpu()
        out = image_processor.postprocess(list(pixels), return_tensors="PIL.Image.Image")
        return list(out["pixel_values"])

    # ----- fine-tuning -----------------------------------------------------------------------------------------------
    def frozen_modules(self, model: nn.Module) -> list[nn.Module]:
        """The VQ model and the understanding-side vision tower with its aligner (unused by generation)."""
        core = unwrap_model(model).model
        return [core.vqmodel, core.vision_model, core.aligner]
