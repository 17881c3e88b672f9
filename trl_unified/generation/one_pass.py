"""The sampler's decoding loop: one KV cache per sample from its prompt to its last code, each row on its own clock.

A batch holds *lanes*: the conditional lane of every sample and, with guidance, the unconditional lane of every
sample that has reached its image. Each forward feeds every lane the tokens it has pending (right-aligned, the
holes masked; positions come from the attention mask, so a lane sees the positions it would see alone):

* a lane in the **text phase** feeds its last drawn token and draws the next from the text head, with the image
  layout's tokens (codes, row markers, end-of-image) masked out (``adapter.text_blocked_ids``);
* when a row switches (it drew begin-of-image, or end-of-sequence, or spent its text budget) it feeds
  ``[BOI] + lead`` (the forced tokens before the first code, e.g. Emu3's size header) at the next forward, in the
  same cache; its unconditional lane joins right then, with one prefill of its own (``adapter.unconditional_ids``
  of the context, all but the tokens it feeds alongside the conditional lane), appended to the cache;
* a lane in the **image phase** feeds its last code (and the forced tokens after it, e.g. an end-of-line marker) and
  draws the next code from the image head after classifier-free guidance; after its last code both its lanes leave
  the batch (the closing forced tokens are never fed: nothing is drawn after them).

So every sample is prefilled once (its guidance lane once more, at the switch), rows never wait for each other, and
the full-vocabulary head never runs where nothing is drawn from it (the sampler steps ``adapter.sampling_backbone``,
the language model without head). In the image phase the host learns nothing from the device: drawn codes stay in a
device tensor and are fed back from there; only text draws are read back (to see who switches).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import torch
from torch import nn

from ..models.base import IMAGE, TEXT, UnifiedModelAdapter, unwrap_model
from .kv_cache import append_rows, new_cache, select_rows
from .logits import DrawSpace, draw, guide, skip_draw

TEXT_PHASE, IMAGE_PHASE, DONE = 0, 1, 2
#: Placeholder in a pending feed for "the code this row drew last" (filled from the device tensor of codes).
LAST_CODE = -1


@dataclass
class Rng:
    """Either one generator for the batch (``generator``, transformers' draws) or one per row (``generators``)."""

    generator: torch.Generator | None = None
    generators: list[torch.Generator] | None = None

    def draws(self, rows: Sequence[int]) -> dict:
        if self.generators is None:
            return {"generator": self.generator}
        return {"generators": [self.generators[i] for i in rows]}


@dataclass
class ImagePlan:
    """``image_layout()`` cut where the sampler needs it."""

    lead: list[int]  # forced tokens before the first code slot: fed with begin-of-image
    runs: list[list[int]]  # runs[j]: forced tokens between code slot j and j+1: fed with code j
    num_slots: int
    code_ids: torch.Tensor  # [K] the id fed for each code
    identity: bool  # code_ids == arange(K): codes are drawn in codebook space

    @classmethod
    def from_adapter(cls, adapter: UnifiedModelAdapter, device: torch.device) -> ImagePlan:
        layout = list(adapter.image_layout())
        slots = [i for i, entry in enumerate(layout) if entry is None]
        if not slots:
            raise ValueError("adapter.image_layout() has no code slot (None entry): there is nothing to sample.")
        runs = [[int(t) for t in layout[a + 1 : b]] for a, b in pairwise(slots)]
        size = adapter.codebook_size
        code_ids = torch.tensor([int(adapter.image_input_id(c)) for c in range(size)], dtype=torch.long, device=device)
        identity = bool(torch.equal(code_ids, torch.arange(size, device=device)))
        return cls([int(t) for t in layout[: slots[0]]], runs, len(slots), code_ids, identity)


@dataclass
class _Row:
    """One sample's state. ``feed``/``modality``: what its conditional lane feeds at the next forward."""

    prompt: list[int]
    phase: int = TEXT_PHASE
    reasoning: list[int] = field(default_factory=list)
    switched: bool = False
    slot: int = 0  # the next code slot to draw
    feed: list[int] = field(default_factory=list)
    modality: list[int] = field(default_factory=list)
    guidance_prefill: list[int] = field(default_factory=list)  # the guidance lane's own prefill (at its join)
    guidance_feed: list[int] = field(default_factory=list)
    guidance_modality: list[int] = field(default_factory=list)


def _right_aligned(feeds: Sequence[Sequence[int]], fill: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(f) for f in feeds)
    ids = torch.tensor([[fill] * (width - len(f)) + list(f) for f in feeds], dtype=torch.long, device=device)
    mask = torch.tensor([[0] * (width - len(f)) + [1] * len(f) for f in feeds], dtype=torch.long, device=device)
    return ids, mask


class OnePassSampler:
    """Samples ``(reasoning, switched, codes)`` for a batch of prompts in one pass (see the module docstring)."""

    def __init__(self, model: nn.Module, adapter, config, device: torch.device):
        self.adapter, self.config, self.device = adapter, config, device
        self.core = unwrap_model(model)
        self.backbone = adapter.sampling_backbone(model)
        self.text_head, self.image_head = adapter.sampling_heads(model)
        self.plan = ImagePlan.from_adapter(adapter, device)
        # transformers >= 5 calls the cache `cache` (`past_key_values` is a deprecated alias until 5.40)
        self.cache_key = (
            "cache" if "cache" in inspect.signature(self.backbone.forward).parameters else "past_key_values"
        )
        self.blocked = torch.tensor(adapter.text_blocked_ids(), dtype=torch.long, device=device)
        self.text_sampling = {"temperature": config.temperature, "top_k": config.top_k, "top_p": config.top_p}
        self.image_sampling = {
            "temperature": config.image_temperature,
            "top_k": config.image_top_k,
            "top_p": config.image_top_p,
        }
        self._image_space: DrawSpace | None = None

    # ----- one forward -----------------------------------------------------------------------------------------------
    def _forward(self, ids: torch.Tensor, modality: torch.Tensor, mask: torch.Tensor, cache) -> torch.Tensor:
        """Feed ``ids [L, n]`` after the cached positions (``mask`` covers cache + new); last hidden state ``[L, H]``."""
        positions = (mask.cumsum(-1) - 1).clamp_min(0)[:, -ids.shape[1] :]
        embeds = self.adapter.input_embeddings(self.core, ids, modality)
        inputs = {"input_ids": ids} if embeds is None else {"inputs_embeds": embeds}
        out = self.backbone(
            **inputs, attention_mask=mask, position_ids=positions, use_cache=True, **{self.cache_key: cache}
        )
        return out.last_hidden_state[:, -1]

    def _image_space_for(self, hidden: torch.Tensor) -> DrawSpace:
        """Where image codes are drawn: the codebook, or (``rng="batch"``, shared vocabularies) transformers' columns."""
        if self._image_space is None:
            if self.config.rng == "row" or self.plan.identity:
                self._image_space = DrawSpace.identity(self.adapter.codebook_size)
            else:
                vocab = self.text_head(hidden[:1]).shape[-1]
                self._image_space = DrawSpace(vocab, self.plan.code_ids)
        return self._image_space

    # ----- the phases ------------------------------------------------------------------------------------------------
    def _start_image(self, row: _Row, pending: list[int], joining: bool) -> None:
        """Switch ``row`` to its image: feed ``pending + [BOI] + lead``; its guidance lane prefills and feeds alike."""
        plan, boi = self.plan, self.adapter.boi_token_id
        row.phase = IMAGE_PHASE
        row.feed = pending + [boi] + plan.lead
        row.modality = [TEXT] * (len(pending) + 1) + [IMAGE] * len(plan.lead)
        if self.config.guided:
            uncond = list(self.adapter.unconditional_ids(row.prompt + row.reasoning + [boi]))
            split = 0 if not joining else max(len(uncond) - len(pending) - 1, 1)
            row.guidance_prefill, row.guidance_feed = uncond[:split], uncond[split:] + plan.lead
            row.guidance_modality = [TEXT] * len(uncond[split:]) + [IMAGE] * len(plan.lead)

    def _text_step(self, rows: list[_Row], which: list[int], hidden: torch.Tensor, rng: Rng) -> list[int]:
        """Draw one text token for the rows ``which``; returns those that switch to their image."""
        config, adapter = self.config, self.adapter
        logits = self.text_head(hidden).float()
        if len(self.blocked):
            logits.index_fill_(-1, self.blocked, -float("inf"))
        tokens = draw(logits, **self.text_sampling, **rng.draws(which)).tolist()
        switching = []
        for i, token in zip(which, tokens):
            row = rows[i]
            if token == adapter.boi_token_id:
                row.switched = config.mode == "unified"
                self._start_image(row, [], joining=True)
            elif token == adapter.eos_token_id:
                self._start_image(row, [], joining=True)
            else:
                row.reasoning.append(token)
                if len(row.reasoning) < config.max_text_tokens:
                    row.feed, row.modality = [token], [TEXT]
                    continue
                self._start_image(row, [token], joining=True)
            switching.append(i)
        return switching

    def _image_step(self, rows, which, hidden, guidance_hidden, codes, last_code, rng) -> None:
        """Draw the next code of the rows ``which`` (codes stay on the device); set what each feeds next."""
        config, plan = self.config, self.plan
        if config.guided:
            logits = self.image_head(torch.cat([hidden, guidance_hidden])).float()
            scores = guide(logits[: len(which)], logits[len(which) :], config.guidance_scale)
        else:
            scores = self.image_head(hidden).float()
        space = self._image_space_for(hidden)
        drawn = draw(scores, space=space, **self.image_sampling, **rng.draws(which))
        index = torch.tensor(which, device=self.device)
        slots = [rows[i].slot for i in which]
        codes[index, torch.tensor(slots, device=self.device)] = drawn
        last_code[index] = drawn
        forced = []
        for i, j in zip(which, slots):
            row = rows[i]
            row.slot += 1
            if row.slot == plan.num_slots:
                row.phase = DONE
                continue
            row.feed = [LAST_CODE] + plan.runs[j]
            row.modality = [IMAGE] * len(row.feed)
            row.guidance_feed, row.guidance_modality = row.feed, row.modality
            forced.append(len(plan.runs[j]))
        if config.rng == "batch" and config.image_temperature != 0:
            # transformers samples each forced token from a one-token distribution: use the same random numbers
            for k in range(max(forced, default=0)):
                skip_draw(sum(f > k for f in forced), space, generator=rng.generator, device=self.device)

    # ----- the loop --------------------------------------------------------------------------------------------------
    def sample(self, prompts: Sequence[Sequence[int]], rng: Rng):
        """``(reasoning ids, switched flags, codes [B, num_slots])`` for the prompt ids of one batch."""
        config, adapter, device = self.config, self.adapter, self.device
        n = len(prompts)
        rows = [_Row(prompt=list(p)) for p in prompts]
        image_first = config.mode == "image_only" or config.max_text_tokens == 0
        for row in rows:
            if image_first:
                self._start_image(row, list(row.prompt), joining=False)
            else:
                row.feed, row.modality = list(row.prompt), [TEXT] * len(row.prompt)
        # lanes: (row, is_guidance); the cache's batch dimension, in this order
        lanes = [(i, False) for i in range(n)]
        if image_first and config.guided:
            lanes += [(i, True) for i in range(n)]
        codes = torch.zeros(n, self.plan.num_slots, dtype=torch.long, device=device)
        last_code = torch.zeros(n, dtype=torch.long, device=device)
        cache, mask, joining = new_cache(), None, []
        pad = adapter.pad_token_id
        while lanes:
            if joining:  # guidance lanes of the rows that just switched: their own prefill, then into the cache
                ids, join_mask = _right_aligned([rows[i].guidance_prefill for i in joining], pad, device)
                join_cache = new_cache()
                self._forward(ids, torch.full_like(ids, TEXT), join_mask, join_cache)
                mask = append_rows(cache, mask, join_cache, join_mask)
                lanes += [(i, True) for i in joining]
            # Every lane feeds `width` of its pending tokens: all of them at the first forward (the prompts), else as
            # many as every lane has, so no lane pads (a row feeding its size header or a row marker while the others
            # feed one token takes one token per step, without drawing, until its queue is empty).
            pending = [
                (rows[i].guidance_feed, rows[i].guidance_modality) if g else (rows[i].feed, rows[i].modality)
                for i, g in lanes
            ]
            width = max(len(f) for f, _ in pending) if mask is None else min(len(f) for f, _ in pending)
            ids, new_mask = _right_aligned([f[:width] for f, _ in pending], pad, device)
            modality, _ = _right_aligned([m[:width] for _, m in pending], TEXT, device)
            for (i, g), (f, m) in zip(lanes, pending):
                if g:
                    rows[i].guidance_feed, rows[i].guidance_modality = f[width:], m[width:]
                else:
                    rows[i].feed, rows[i].modality = f[width:], m[width:]
            placeholder = ids == LAST_CODE
            lane_rows = torch.tensor([i for i, _ in lanes], device=device)
            ids = torch.where(placeholder, self.plan.code_ids[last_code[lane_rows]][:, None], ids)
            ids = ids.masked_fill(new_mask == 0, pad)
            mask = new_mask if mask is None else torch.cat([mask, new_mask], dim=1)
            hidden = self._forward(ids, modality, mask, cache)

            position = {lane: k for k, lane in enumerate(lanes)}
            ready = [i for i, g in lanes if not g and not rows[i].feed]  # fed everything: they draw
            text = [i for i in ready if rows[i].phase == TEXT_PHASE]
            image = [i for i in ready if rows[i].phase == IMAGE_PHASE]
            if image:
                cond = hidden[[position[(i, False)] for i in image]]
                uncond = hidden[[position[(i, True)] for i in image]] if config.guided else None
                self._image_step(rows, image, cond, uncond, codes, last_code, rng)
            joining = []
            if text:
                switching = self._text_step(rows, text, hidden[[position[(i, False)] for i in text]], rng)
                joining = switching if config.guided else []
            keep = [k for k, (i, _) in enumerate(lanes) if rows[i].phase != DONE]
            if len(keep) < len(lanes):
                lanes = [lanes[k] for k in keep]
                if lanes:
                    mask = select_rows(cache, mask, torch.tensor(keep, device=device))
        return [r.reasoning for r in rows], [r.switched for r in rows], codes
