"""Adapter for a plain causal LM whose vocabulary holds the image codes (the shapes world's tiny model is one).

The model's config names its image vocabulary in a ``unified_image`` dict, saved in ``config.json`` beside the
weights so a checkpoint is self-describing::

    model.config.unified_image = {
        "boi_token": "<boi>", "eoi_token": "<eoi>",
        "image_token_template": "<img_{}>",   # code i is the token "<img_i>"
        "codebook_size": 8, "num_image_tokens": 64,
        "image_codec": "shapes",              # a name in IMAGE_CODECS, or "module:Class"
    }

The codec turns pixels into codes and back (a VQ model does this for Emu3/Janus).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from functools import partial
from typing import Any

import torch
from torch import nn
from transformers import AutoModelForCausalLM

from .base import UnifiedModelAdapter, unwrap_model

#: Image codecs by name: "module:attribute" of a class with ``encode(image) -> codes`` and ``decode(codes) -> image``.
IMAGE_CODECS: dict[str, str] = {"shapes": "trl_unified.shapes.codec:ShapesImageCodec"}

REQUIRED_KEYS = ("boi_token", "eoi_token", "image_token_template", "codebook_size", "num_image_tokens")


def load_codec(name: str) -> Any:
    """Instantiate an image codec from its registered name or a ``module:Class`` path."""
    path = IMAGE_CODECS.get(name, name)
    if ":" not in path:
        raise ValueError(f"Unknown image codec {name!r}: use one of {sorted(IMAGE_CODECS)} or 'module:Class'.")
    module, attribute = path.split(":", 1)
    return getattr(importlib.import_module(module), attribute)()


class SharedVocabularyAdapter(UnifiedModelAdapter):
    """Families whose image codes are ordinary vocabulary ids: image positions are scored on that slice of the head."""

    #: Vocabulary id of every code, in code order (set by subclasses).
    image_token_ids: list[int]

    def image_input_id(self, code: int) -> int:
        return self.image_token_ids[code]

    @property
    def codebook_size(self) -> int:
        return len(self.image_token_ids)

    def _output_head(self, model: nn.Module) -> nn.Module:
        return model.get_output_embeddings()

    def text_logits(self, model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
        return self._output_head(model)(hidden)

    def image_logits(self, model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
        head = self._output_head(model)
        ids = torch.as_tensor(self.image_token_ids, device=head.weight.device)
        bias = None if head.bias is None else head.bias[ids]
        return nn.functional.linear(hidden, head.weight[ids], bias)

    def sampling_heads(self, model: nn.Module):
        """The image head as a cached slice of the output head (its code rows copied once, not at every step)."""
        text_head, _ = super().sampling_heads(model)
        head = self._output_head(unwrap_model(model))
        ids = torch.as_tensor(self.image_token_ids, device=head.weight.device)
        weight = head.weight.detach()[ids]
        bias = None if head.bias is None else head.bias.detach()[ids]
        return text_head, partial(nn.functional.linear, weight=weight, bias=bias)

    def text_blocked_ids(self) -> list[int]:
        return sorted(set(super().text_blocked_ids()) | set(self.image_token_ids))


class CausalLMAdapter(SharedVocabularyAdapter):
    """Any ``AutoModelForCausalLM`` whose config carries a ``unified_image`` description (see module docstring)."""

    family = "causal_lm"
    model_class = AutoModelForCausalLM
    lora_target_modules = r".*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)$"

    def __init__(self, model: nn.Module, processing_class: Any):
        super().__init__(model, processing_class)
        spec = getattr(self.config, "unified_image", None) or {}
        missing = [key for key in REQUIRED_KEYS if key not in spec]
        if missing:
            raise ValueError(f"config.unified_image is missing {missing}; see trl_unified.models.causal_lm.")
        self.spec = spec
        self.image_token_ids = [self.token_id(spec["image_token_template"].format(i)) for i in range(spec["codebook_size"])]
        self.boi_token_id = self.token_id(spec["boi_token"])
        self.eoi_token_id = self.token_id(spec["eoi_token"])
        self.codec = load_codec(spec["image_codec"]) if spec.get("image_codec") else None

    @classmethod
    def matches(cls, model: nn.Module) -> bool:
        return getattr(unwrap_model(model).config, "unified_image", None) is not None

    @property
    def num_image_tokens(self) -> int:
        return int(self.spec["num_image_tokens"])

    def image_layout(self) -> list[int | None]:
        return [None] * self.num_image_tokens + [self.eoi_token_id]

    def _require_codec(self) -> Any:
        if self.codec is None:
            raise ValueError("config.unified_image names no `image_codec`, so images cannot be encoded or decoded.")
        return self.codec

    def encode_images(self, model: nn.Module, images: Sequence[Any]) -> torch.Tensor:
        codec = self._require_codec()
        return torch.tensor([codec.encode(image) for image in images], dtype=torch.long)

    def decode_images(self, model: nn.Module, codes: torch.Tensor) -> list[Any]:
        codec = self._require_codec()
        return [codec.decode([int(c) for c in row]) for row in torch.as_tensor(codes)]
