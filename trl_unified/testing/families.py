"""Every model family's tiny builder under one name, so tests (and benchmarks) can run the same check on each."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .causal_lm import tiny_causal_lm
from .emu3 import tiny_emu3
from .janus import tiny_janus

#: ``family name -> builder(seed=0) -> (model, processing class)``, one entry per adapter in ``trl_unified.models``.
FAMILIES: dict[str, Callable[..., tuple[Any, Any]]] = {
    "causal_lm": tiny_causal_lm,
    "janus": tiny_janus,
    "emu3": tiny_emu3,
}


def tiny_model(family: str, seed: int = 0) -> tuple[Any, Any]:
    """The tiny random model and processing class of ``family`` (a key of :data:`FAMILIES`)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {sorted(FAMILIES)}")
    return FAMILIES[family](seed=seed)
