"""Adapter for a plain causal LM whose vocabulary holds the image codes (the embedded demo's tiny model is one).

The model's config names its image vocabulary in a ``unified_image`` dict, saved in ``config.json`` beside the
weights so a checkpoint is self-describing::

    model.config.unified_image = {
        "boi_token": "<boi>", "eoi_token": "<eoi>",
        "image_token_template": "<img_{}>",   # code i is the token "<img_i>"
        "codebook_size": 8, "num_image_tokens": 64,
        "image_codec": "shapes",              # an installed codec's name (entry point), or "module:Class"
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

REQUIRED_KEYS = ("boi_token", "eoi_token", "image_token_template", "codebook_size", "num_image_tokens")


def load_codec(name: str) -> Any:
    """Instantiate an image codec (a class with ``encode(image) -> codes`` and ``decode(codes) -> image``) from the
    name of an installed ``trl_unified.image_codecs`` entry point or a ``module:Class`` path."""
    from ..plugins import IMAGE_CODECS, registered

    codecs = registered(IMAGE_CODECS)
    path = codecs.get(name, name)
    if ":" not in path:
        raise ValueError(f"Unknown image codec {name!r}: use one of {sorted(codecs)} or 'module:Class'.")
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
        """The head *module* over the whole vocabulary, then the code columns.

        Calling the module (rather than reading ``head.weight[ids]``) is what lets ZeRO-3 gather the weight and a
        LoRA layer on the head take part. The cost: the head's full ``[rows, vocabulary]`` product for image rows
        (Emu3: 184,622 ids for 32,768 codes, 5.6x the sliced product, about 8% more forward FLOPs per image token of
        the 8B model); ``head_chunk_rows`` bounds the transient full logits, only the code columns stay for backward.
        """
        logits = self._output_head(model)(hidden)
        ids = getattr(self, "_image_ids_tensor", None)
        if ids is None or ids.device != logits.device:
            ids = self._image_ids_tensor = torch.as_tensor(self.image_token_ids, device=logits.device)
        return logits.index_select(-1, ids)

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
        self.image_token_ids = [
            self.token_id(spec["image_token_template"].format(i)) for i in range(spec["codebook_size"])
        ]
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
