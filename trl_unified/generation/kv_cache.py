"""The sampler's KV cache: one row per lane, rows that join and leave, and no copy of the whole cache per step.

transformers' ``DynamicCache`` grows by ``torch.cat`` at every step, i.e. it copies the whole cache each time a token
is added (quadratic in the sequence length: at 256 codes this is most of a small model's step). :class:`GrowingLayer`
keeps a buffer with spare room and writes the new keys/values into it in place; the attention sees a view of the
filled part. The batch dimension is the sampler's *lanes* (a sample's conditional row, and its guidance row once it
has joined): :func:`select_rows` drops finished lanes, :func:`append_rows` adds lanes prefilled on their own, both
left-padding whichever side is shorter (left padding is masked, and positions come from the attention mask, so a lane
sees the positions it would see alone).
"""

from __future__ import annotations

import torch
from transformers.cache_utils import Cache, DynamicLayer


class GrowingLayer(DynamicLayer):
    """A ``DynamicLayer`` whose ``update`` writes into a buffer that doubles when full (amortised O(new tokens))."""

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        super().lazy_initialization(key_states, value_states)
        self._set(key_states[..., :0, :], value_states[..., :0, :])

    def _set(self, keys: torch.Tensor, values: torch.Tensor, room: int = 0) -> None:
        """Hold ``keys``/``values`` ``[B, h, T, d]`` in fresh buffers with room for ``max(room, T)`` more tokens."""
        length = keys.shape[-2]
        capacity = length + max(room, length, 16)
        self._k = keys.new_empty(*keys.shape[:-2], capacity, keys.shape[-1])
        self._v = values.new_empty(*values.shape[:-2], capacity, values.shape[-1])
        self._k[..., :length, :] = keys
        self._v[..., :length, :] = values
        self.keys, self.values = self._k[..., :length, :], self._v[..., :length, :]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        start, new = self.keys.shape[-2], key_states.shape[-2]
        if start + new > self._k.shape[-2]:
            self._set(self.keys, self.values, room=new)
        self._k[..., start : start + new, :] = key_states
        self._v[..., start : start + new, :] = value_states
        self.keys, self.values = self._k[..., : start + new, :], self._v[..., : start + new, :]
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.keys.shape[-2] if self.is_initialized else 0


def new_cache() -> Cache:
    """An empty cache of :class:`GrowingLayer` (one per decoder layer, created on first use)."""
    return Cache(layer_class_to_replicate=GrowingLayer)


def _left_pad(tensor: torch.Tensor, length: int) -> torch.Tensor:
    missing = length - tensor.shape[-2]
    if missing <= 0:
        return tensor
    return torch.cat([tensor.new_zeros(*tensor.shape[:-2], missing, tensor.shape[-1]), tensor], dim=-2)


def select_rows(cache: Cache, mask: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Keep the lanes ``rows`` of ``cache`` (in place) and of ``mask [B, T]``; drop leading columns no lane uses.

    Returns the new mask. (Trimming the left edge keeps a long finished lane from making every later step attend
    over its length.)
    """
    mask = mask[rows]
    used = mask.any(0).nonzero()
    first = int(used[0]) if len(used) else mask.shape[1]
    for layer in cache.layers:
        if layer.is_initialized:
            layer._set(layer.keys[rows][..., first:, :], layer.values[rows][..., first:, :])
    return mask[:, first:]


def append_rows(cache: Cache, mask: torch.Tensor, other: Cache, other_mask: torch.Tensor) -> torch.Tensor:
    """Append the lanes of ``other`` (with ``other_mask``) after those of ``cache`` (in place); returns the mask."""
    length = max(mask.shape[1], other_mask.shape[1])
    for layer, extra in zip(cache.layers, other.layers):
        keys = torch.cat([_left_pad(layer.keys, length), _left_pad(extra.keys, length)])
        values = torch.cat([_left_pad(layer.values, length), _left_pad(extra.values, length)])
        layer._set(keys, values)
    pad = [(m.new_zeros(m.shape[0], length - m.shape[1]), m) for m in (mask, other_mask)]
    return torch.cat([torch.cat(p, dim=1) for p in pad])
