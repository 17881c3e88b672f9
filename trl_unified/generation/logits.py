"""Logit processing and token draws for the sampler, in transformers' exact order and arithmetic.

``model.generate`` turns logits into a token as: classifier-free guidance -> ``TemperatureLogitsWarper`` ->
``TopKLogitsWarper`` -> ``TopPLogitsWarper`` -> ``softmax`` -> ``torch.multinomial(probs, num_samples=1)`` (or the
``argmax`` of the guided scores when ``do_sample=False``). The functions here repeat that arithmetic line for line, so
that a draw from the same generator state picks the same token.

``torch.multinomial(p, 1)`` fills a tensor shaped like ``p`` with ``Exp(1)`` noise and takes ``argmax(p / noise)``:
its random-number use depends only on the *shape* of ``p``, and which noise element a token meets depends on its
*column*. Matching transformers therefore also means drawing from a tensor of the same width, with each token in the
same column (:class:`DrawSpace`), and advancing the generator wherever transformers draws a token that a constraint
has already decided (:func:`skip_draw`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


def guide(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance in logit space, as ``ClassifierFreeGuidanceLogitsProcessor``: ``u + (c - u) * s``."""
    return uncond + (cond - uncond) * scale


def warp(scores: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None):
    """Temperature, then top-k, then top-p (nucleus), exactly as transformers' warpers (``min_tokens_to_keep=1``).

    ``temperature`` 1, ``top_k`` 0/None and ``top_p`` 1/None are no-ops (transformers does not add those warpers).
    Filtered entries become ``-inf``.
    """
    if temperature is not None and temperature != 1.0:
        scores = scores / temperature
    if top_k:
        k = min(max(int(top_k), 1), scores.size(-1))
        scores = scores.masked_fill(scores < torch.topk(scores, k)[0][..., -1, None], -float("inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, sorted_indices = torch.sort(scores, descending=False)
        cumulative_probs = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        sorted_indices_to_remove = cumulative_probs <= (1 - top_p)
        sorted_indices_to_remove[..., -1:] = 0
        indices_to_remove = sorted_indices_to_remove.scatter(1, sorted_indices, sorted_indices_to_remove)
        scores = scores.masked_fill(indices_to_remove, -float("inf"))
    return scores


@dataclass
class DrawSpace:
    """The columns a draw is made over: ``size`` columns, candidate ``j`` of the scores sits in column ``columns[j]``.

    ``columns=None`` is the identity (the scores are drawn as they are). Shared-vocabulary families draw image codes
    in the full vocabulary (their ids), as transformers does after masking everything but the visual tokens.
    """

    size: int
    columns: torch.Tensor | None = None

    @classmethod
    def identity(cls, size: int) -> DrawSpace:
        return cls(size)

    def __post_init__(self):
        if self.columns is not None:
            self._lookup = torch.full((self.size,), -1, dtype=torch.long, device=self.columns.device)
            self._lookup[self.columns] = torch.arange(len(self.columns), device=self.columns.device)

    def embed(self, probs: torch.Tensor) -> torch.Tensor:
        if self.columns is None:
            return probs
        out = probs.new_zeros(*probs.shape[:-1], self.size)
        out[..., self.columns] = probs
        return out

    def index(self, drawn: torch.Tensor) -> torch.Tensor:
        return drawn if self.columns is None else self._lookup[drawn]


def draw(
    scores: torch.Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    generators: Sequence[torch.Generator] | None = None,
    space: DrawSpace | None = None,
) -> torch.Tensor:
    """One token index per row of ``scores [B, N]``.

    ``temperature == 0`` is greedy: the argmax of ``scores`` (warpers skipped, no random numbers used, like
    ``do_sample=False``). Otherwise the warped scores are soft-maxed and drawn with ``torch.multinomial``: one call over
    the whole batch with ``generator`` (transformers' call), or one call per row with ``generators[i]`` (rows that do
    not depend on each other). ``space`` places the candidates in the columns transformers draws them from.
    """
    if temperature == 0:
        return scores.argmax(dim=-1)
    probs = torch.softmax(warp(scores, temperature, top_k, top_p), dim=-1)
    space = space or DrawSpace.identity(scores.shape[-1])
    probs = space.embed(probs)
    if generators is None:
        drawn = torch.multinomial(probs, num_samples=1, generator=generator).squeeze(-1)
    else:
        if len(generators) != probs.shape[0]:
            raise ValueError(f"{len(generators)} generators for {probs.shape[0]} rows")
        drawn = torch.cat([torch.multinomial(p[None], 1, generator=g).view(1) for p, g in zip(probs, generators)])
    return space.index(drawn)


def skip_draw(
    rows: int,
    space: DrawSpace,
    *,
    generator: torch.Generator | None = None,
    generators: Sequence[torch.Generator] | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> None:
    """Use exactly the random numbers a draw over ``rows x space.size`` would, without computing anything else.

    transformers still calls ``torch.multinomial`` when a constraint leaves a single allowed token (e.g. Emu3's
    end-of-line markers under ``prefix_allowed_tokens_fn``); later draws only line up if the generator moves on too.
    """
    if generators is None:
        torch.empty((rows, space.size), device=device, dtype=dtype).exponential_(1, generator=generator)
    else:
        for g in generators:
            torch.empty((1, space.size), device=device, dtype=dtype).exponential_(1, generator=g)
