"""CLIP score: how well a generated image matches its prompt, by CLIP embedding similarity.

A cheap alignment signal, but it saturates on compositional prompts (counts,
relations), which is what :mod:`~trl_unified.rewards.vqa_score` is for.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import torch

from ._hf import chunks, load_judge, to_model
from .base import score_present


class CLIPScoreReward:
    """Image reward: cosine similarity of CLIP image and prompt embeddings.

    ``scale="cosine"`` (default) returns the raw cosine in [-1, 1]. ``scale="clipscore"`` returns
    ``max(100 * cos, 0)`` in [0, 100], the CLIPScore of Hessel et al. as computed by torchmetrics'
    ``CLIPScore``. Samples without an image get ``None``. Prompts longer than the text encoder's
    context are truncated.

    Pass ``model_name_or_path`` (loaded with ``CLIPModel``/``CLIPProcessor.from_pretrained``) or
    ready ``model`` and ``processor`` instances.
    """

    name = "clip_score"

    def __init__(
        self,
        model_name_or_path: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
        scale: Literal["cosine", "clipscore"] = "cosine",
        *,
        model: Any = None,
        processor: Any = None,
        batch_size: int = 32,
        dtype: torch.dtype | None = None,
    ) -> None:
        from transformers import CLIPModel, CLIPProcessor

        if scale not in ("cosine", "clipscore"):
            raise ValueError(f"scale must be 'cosine' or 'clipscore', got {scale!r}")
        model, processor, self.device = load_judge(
            model_name_or_path, model, processor, CLIPModel, CLIPProcessor, dtype, device
        )
        self.model = model
        self.processor = processor
        self.scale = scale
        self.batch_size = int(batch_size)
        self.max_length = getattr(getattr(model.config, "text_config", None), "max_position_embeddings", None)

    @torch.no_grad()
    def cosine(self, prompts: list[str], images: list[Any]) -> list[float]:
        """Raw cosine similarity for aligned (prompt, image) pairs, all images present."""
        out: list[float] = []
        for idx in chunks(list(range(len(prompts))), self.batch_size):
            inputs = self.processor(
                text=[prompts[i] for i in idx],
                images=[images[i].convert("RGB") for i in idx],
                return_tensors="pt",
                padding=True,
                truncation=self.max_length is not None,
                max_length=self.max_length,
            )
            outputs = self.model(**to_model(inputs, self.model, self.device))
            # CLIPModel's image_embeds / text_embeds are already L2-normalised projections.
            out.extend((outputs.image_embeds * outputs.text_embeds).sum(dim=-1).float().tolist())
        return out

    def __call__(
        self, prompts: list[str], reasoning: list[str], images: list[Any], **columns: Any
    ) -> list[float | None]:
        pairs = [None if image is None else (prompt, image) for prompt, image in zip(prompts, images)]
        cosines = score_present(pairs, lambda present: self.cosine(*map(list, zip(*present))))
        if self.scale != "clipscore":
            return cosines
        return [None if value is None else max(100.0 * value, 0.0) for value in cosines]
