"""Stable seeds: a hash of named parts, so neighbouring prompts or samples get unrelated random streams and a seed
never depends on batching, sharding or the number of processes."""

from __future__ import annotations

import hashlib
from typing import Any


def stable_seed(*parts: Any) -> int:
    """A 63-bit seed from ``parts`` (their ``str``, joined by ``/``): the same parts give the same seed everywhere."""
    digest = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def prompt_seed(seed: int, prompt_id: Any) -> int:
    """The sampler seed of one prompt in self-generation: a hash of the run's base seed and the prompt's id (stable
    across runs, shard sizes and process counts). Stored in every row's ``seed`` column."""
    return stable_seed("trl-unified/self-generation", seed, prompt_id)
