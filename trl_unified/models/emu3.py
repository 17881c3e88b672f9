"""Adapter for BAAI Emu3 (``transformers.Emu3ForConditionalGeneration``, e.g. ``BAAI/Emu3-Gen-hf``).

Emu3 keeps its image codes in the text vocabulary: VQ code ``i`` is the ordinary token ``<|visual token {i:06d}|>``
(``model.vocabulary_mapping.img2bpe[i]``), fed through the text embeddings and predicted by ``lm_head``. Image
positions are scored on the visual-id slice of ``lm_head`` (``SharedVocabularyAdapter.image_logits``), so the
184k-entry text vocabulary is never materialised for them.

What transformers' own Emu3 image generation produces (``processor(text, return_for_image_generation=True)``, then
``model.generate(..., prefix_allowed_tokens_fn=...)`` as in the Emu3 model doc; see
``trl_unified.testing.emu3.emu3_reference_image_generation``), for an image of ``h x w`` codes::

    <|extra_203|> prompt <|image start|> "{h}*{w}" <|image token|>            <- the processor's prompt
    [w codes] <|extra_200|>  x h rows                                         <- generate (codes sampled, EOL forced)
    <|extra_201|> <|image end|> <|extra_204|>                                 <- generate (forced)

(BOS ``<|extra_203|>``, begin-of-image ``<|image start|>``, image wrapper ``<|image token|>``, end-of-line
``<|extra_200|>``, end-of-frame ``<|extra_201|>``, end-of-image ``<|image end|>``, EOS ``<|extra_204|>``; in the
real checkpoints the header ``"90*90"`` is plain text tokens.) This adapter describes it as
``[boi_token_id] + image_layout()``, i.e. everything after begin-of-image is in ``image_layout()``::

    header ids of "{h}*{w}", <|image token|>,
    (None x w, <|extra_200|>) x h,
    <|extra_201|>, <|image end|>, <|extra_204|>

Every entry but the ``None`` code slots is forced: fed to the model, never sampled, label -100. Begin-of-image is a
trained text token (it is the switch from text to image). The processor puts begin-of-image, the header and the
wrapper in the *prompt*; a sampler that stops the prompt at begin-of-image and forces ``image_layout()`` feeds the
model exactly the same ids. The trailing EOS ends the sequence, as it ends HF's generation.

Image size: HF derives ``(h, w)`` at call time from the processor's ``ratio`` and ``image_area``
(``Emu3Processor.calculate_generate_size``, 90x90 codes for the defaults ``"1:1"``/``518400``). The adapter reads,
in this order: constructor arguments ``ratio=``/``image_area=``, values set on the processor *instance*
(``processor.image_area = ...``, which the processor itself also uses as defaults), an optional
``config.unified_image_generation = {"ratio": ..., "image_area": ...}`` dict (saved in ``config.json``, so tiny test
checkpoints are self-describing; the processor does not serialise these two values), then the processor defaults.
Pass the same ``ratio``/``image_area`` to the processor when generating with HF (the reference helper does).

Caveats:

* ``Emu3TextConfig.attention_dropout`` defaults to 0.1 and Emu3 applies it both to attention probabilities and to the
  residual branches of every decoder layer. In ``train()`` mode the training log-probs are therefore *not* the
  sampling (``eval()``) log-probs; set ``model.config.text_config.attention_dropout = 0`` (before building the model)
  or train in eval mode where on-policy log-prob equality matters. The adapter warns when it is non-zero.
* The VQ model (``model.model.vqmodel``) is frozen and contains ``BatchNorm3d`` layers (temporal blocks);
  ``encode_images``/``decode_images`` run it in ``eval()`` mode and under ``no_grad`` whatever the trainer's mode.
* LoRA: the VQ attention blocks also have ``q_proj``/``k_proj``/``v_proj`` modules, so plain names would wrap
  them; ``lora_target_modules`` only matches ``text_model.layers.N.{self_attn,mlp}`` projections.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from transformers import Emu3ForConditionalGeneration, Emu3Processor

from .base import unwrap_model
from .causal_lm import SharedVocabularyAdapter

#: Token names of the Emu3 checkpoints, used when a tokenizer does not name them as attributes.
DEFAULT_BOI_TOKEN = "<|image start|>"
DEFAULT_EOI_TOKEN = "<|image end|>"
DEFAULT_IMAGE_WRAPPER_TOKEN = "<|image token|>"
DEFAULT_EOF_TOKEN = "<|extra_201|>"
#: End-of-line (row marker): hard-coded by transformers (``Emu3ImageVocabularyMapping`` and the model doc).
EOL_TOKEN = "<|extra_200|>"
#: Optional config attribute naming the generated image size (see module docstring).
IMAGE_GENERATION_CONFIG_KEY = "unified_image_generation"


class Emu3Adapter(SharedVocabularyAdapter):
    """``Emu3ForConditionalGeneration`` with its ``Emu3Processor`` (or just its tokenizer, without image I/O)."""

    family = "emu3"
    pipeline_tag = "any-to-any"  # it also reads images (image-text-to-text)
    model_class = Emu3ForConditionalGeneration
    #: The language model's attention and MLP projections only (never the VQ model's attention blocks).
    lora_target_modules = (
        r"(?:.*\.)?text_model\.layers\.\d+\."
        r"(?:self_attn\.(?:q_proj|k_proj|v_proj|o_proj)|mlp\.(?:gate_proj|up_proj|down_proj))"
    )

    def __init__(
        self, model: nn.Module, processing_class: Any, *, ratio: str | None = None, image_area: int | None = None
    ):
        super().__init__(model, processing_class)
        core = unwrap_model(model)
        self.image_processor = getattr(processing_class, "image_processor", None)

        # Codes -> vocabulary ids, from the model's own mapping (what `decode_image_tokens`/`get_image_tokens` use).
        mapping = core.vocabulary_mapping
        img2bpe = mapping.img2bpe
        if sorted(img2bpe) != list(range(len(img2bpe))):
            raise ValueError("Emu3 vocabulary_map: the visual tokens are not codes 0..N-1 without gaps.")
        self.image_token_ids = [int(img2bpe[code]) for code in range(len(img2bpe))]
        vq_codebook = int(self.config.vq_config.codebook_size)
        if len(self.image_token_ids) != vq_codebook:
            raise ValueError(
                f"Emu3 vocabulary_map has {len(self.image_token_ids)} visual tokens but the VQ codebook has "
                f"{vq_codebook}."
            )

        self.boi_token_id = self.token_id(DEFAULT_BOI_TOKEN, "boi_token")
        self.eoi_token_id = self.token_id(DEFAULT_EOI_TOKEN, "eoi_token")
        self._image_wrapper = self.token_id(DEFAULT_IMAGE_WRAPPER_TOKEN, "image_wrapper_token")
        self._eof = self.token_id(DEFAULT_EOF_TOKEN, "eof_token")
        self._eol = mapping.eol_token_id
        if self._eol is None:
            raise ValueError(f"Emu3 vocabulary_map has no end-of-line token {EOL_TOKEN!r}.")
        self._eol = int(self._eol)
        tokenizer_eol = self.tokenizer.convert_tokens_to_ids(EOL_TOKEN)
        if tokenizer_eol != self._eol:
            raise ValueError(
                f"The tokenizer's {EOL_TOKEN!r} is {tokenizer_eol}, the model's vocabulary_map says {self._eol}."
            )
        if self.tokenizer.eos_token_id is None or self.tokenizer.bos_token_id is None:
            raise ValueError("The Emu3 tokenizer needs a bos_token and an eos_token.")
        visual = set(self.image_token_ids)
        for name, token_id in (
            ("begin-of-image", self.boi_token_id),
            ("eos", self.eos_token_id),
            ("pad", self.pad_token_id),
        ):
            if token_id in visual:
                raise ValueError(f"The {name} id {token_id} is a visual token.")

        self._height, self._width = self._generation_size(ratio, image_area)
        self._header = list(self.tokenizer(f"{self._height}*{self._width}", add_special_tokens=False)["input_ids"])

        dropout = float(getattr(self.config.text_config, "attention_dropout", 0.0) or 0.0)
        if dropout > 0:
            warnings.warn(
                f"Emu3 text_config.attention_dropout={dropout}: in train() mode training log-probs differ from the "
                "eval()-mode sampling log-probs (dropout is applied to attention and to the residual branches).",
                stacklevel=2,
            )

    def _generation_size(self, ratio: str | None, image_area: int | None) -> tuple[int, int]:
        """``(h, w)`` in codes, exactly as ``Emu3Processor.__call__(return_for_image_generation=True)`` computes it."""
        spec = getattr(self.config, IMAGE_GENERATION_CONFIG_KEY, None) or {}
        instance = vars(self.processing_class) if isinstance(self.processing_class, Emu3Processor) else {}
        if ratio is None:
            ratio = instance.get("ratio") or spec.get("ratio") or Emu3Processor.ratio
        if image_area is None:
            image_area = instance.get("image_area") or spec.get("image_area") or Emu3Processor.image_area
        downsample = getattr(self.processing_class, "downsample_ratio", 8)
        # `calculate_generate_size` does not use `self`: call the library's own arithmetic.
        height, width = Emu3Processor.calculate_generate_size(self.processing_class, ratio, image_area, downsample)
        if height < 1 or width < 1:
            raise ValueError(f"ratio={ratio!r}, image_area={image_area} gives an empty {height}x{width} image.")
        self.ratio, self.image_area = ratio, image_area
        return int(height), int(width)

    # ----- vocabulary and layout -------------------------------------------------------------------------------------
    @property
    def eol_token_id(self) -> int:
        return self._eol

    @property
    def eof_token_id(self) -> int:
        return self._eof

    @property
    def image_wrapper_token_id(self) -> int:
        return self._image_wrapper

    @property
    def image_size_in_tokens(self) -> tuple[int, int]:
        """``(height, width)`` of a generated image, in codes (each row is followed by end-of-line)."""
        return self._height, self._width

    @property
    def header_token_ids(self) -> list[int]:
        """The ``"{h}*{w}"`` size header (text tokens) that follows begin-of-image."""
        return list(self._header)

    @property
    def num_image_tokens(self) -> int:
        return self._height * self._width

    def image_layout(self) -> list[int | None]:
        """``"{h}*{w}" <|image token|> ([w codes] <|extra_200|>) x h <|extra_201|> <|image end|> EOS``."""
        row = [None] * self._width + [self._eol]
        return [
            *self._header,
            self._image_wrapper,
            *(row * self._height),
            self._eof,
            self.eoi_token_id,
            self.eos_token_id,
        ]

    def tokenize_prompt(self, prompt: str) -> list[int]:
        """``Emu3Processor``'s text ids: the processor prepends BOS as text (the tokenizer adds none)."""
        return list(self.tokenizer(f"{self.tokenizer.bos_token}{prompt}")["input_ids"])

    def generation_prompt_ids(self, prompt: str) -> list[int]:
        """What ``processor(prompt, return_for_image_generation=True)`` returns: prompt, BOI, header, wrapper."""
        return self.tokenize_prompt(prompt) + [self.boi_token_id] + self._header + [self._image_wrapper]

    # forward_hidden: the base version is right for Emu3. `Emu3ForConditionalGeneration.forward` accepts
    # `logits_to_keep` (it slices the hidden states before `lm_head`), and its text model is wrapped by
    # `capture_outputs` with `tie_last_hidden_states=True`, so `hidden_states[-1]` is the *post-norm*
    # `last_hidden_state` (`lm_head(hidden_states[-1])` equals the full logits; checked in the tests).

    # ----- images ----------------------------------------------------------------------------------------------------
    def _require_image_processor(self) -> Any:
        if self.image_processor is None:
            raise ValueError("Encoding/decoding Emu3 images needs the Emu3Processor (with its image processor).")
        return self.image_processor

    def encode_images(self, model: nn.Module, images: Sequence[Any]) -> torch.Tensor:
        """PIL images -> codes ``[N, h*w]`` (row-major) with the frozen VQ model.

        Each image is resized (the image processor's resampling) to exactly ``h x w`` codes' worth of pixels, so every
        image gets ``num_image_tokens`` codes whatever its size (the processor's own ``smart_resize`` keeps the aspect
        ratio and would give a different count); then ``image_processor(..., do_resize=False)`` and
        ``model.model.vqmodel.encode`` (what ``Emu3Model.get_image_tokens`` uses, before its vocabulary mapping).
        """
        from PIL import Image

        image_processor = self._require_image_processor()
        core = unwrap_model(model)
        vq = core.model.vqmodel
        factor = int(vq.vision_spatial_factor)
        size = (self._width * factor, self._height * factor)  # PIL: (width, height)
        resample = getattr(image_processor, "resample", Image.Resampling.BICUBIC)
        prepared = []
        for image in images:
            if not isinstance(image, Image.Image):
                image = Image.fromarray(image)
            image = image.convert("RGB")
            prepared.append(image if image.size == size else image.resize(size, resample=resample))
        batch = image_processor(prepared, do_resize=False, return_tensors="pt")
        device = next(vq.parameters()).device
        pixel_values = batch["pixel_values"].to(device=device, dtype=vq.dtype)
        image_sizes = batch["image_sizes"].to(device)
        was_training = vq.training
        vq.eval()
        try:
            with torch.no_grad():
                out = vq.encode(pixel_values, image_sizes, return_dict=True)
        finally:
            vq.train(was_training)
        codes = torch.stack([tokens.reshape(-1) for tokens in out.image_tokens]).long()
        if codes.shape[1] != self.num_image_tokens:
            raise ValueError(f"the VQ model made {codes.shape[1]} codes per image, expected {self.num_image_tokens}")
        return codes.cpu()

    def generated_image_ids(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[N, h*w]`` -> what HF generation produces after ``<|image token|>`` (rows, EOL, EOF, EOI, EOS)."""
        codes = torch.as_tensor(codes).long().reshape(-1, self.num_image_tokens)
        body = self.image_layout()[len(self._header) + 1 :]
        slots = torch.tensor([entry is None for entry in body])
        ids = torch.tensor([0 if entry is None else entry for entry in body]).repeat(codes.shape[0], 1)
        lookup = torch.tensor(self.image_token_ids)
        if codes.numel() and (codes.min() < 0 or codes.max() >= len(lookup)):
            raise ValueError(f"image codes must be in [0, {len(lookup)})")
        ids[:, slots] = lookup[codes]
        return ids

    def decode_images(self, model: nn.Module, codes: torch.Tensor) -> list[Any]:
        """Codes ``[N, h*w]`` -> PIL images, through ``model.decode_image_tokens`` and ``processor.postprocess``."""
        image_processor = self._require_image_processor()
        core = unwrap_model(model)
        vq = core.model.vqmodel
        ids = self.generated_image_ids(codes).to(next(vq.parameters()).device)
        was_training = vq.training
        vq.eval()
        try:
            with torch.no_grad():
                pixels = core.decode_image_tokens(image_tokens=ids, height=self._height, width=self._width)
        finally:
            vq.train(was_training)
        out = image_processor.postprocess(list(pixels.float().cpu()), return_tensors="PIL.Image.Image")
        return list(out["pixel_values"])

    # ----- fine-tuning -----------------------------------------------------------------------------------------------
    def frozen_modules(self, model: nn.Module) -> list[nn.Module]:
        return [unwrap_model(model).model.vqmodel]
