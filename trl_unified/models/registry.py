"""Picks the adapter for a model: the one place that knows which families exist."""

from __future__ import annotations

from typing import Any

from torch import nn

from .base import UnifiedModelAdapter, unwrap_model
from .causal_lm import CausalLMAdapter
from .emu3 import Emu3Adapter
from .janus import JanusAdapter

#: Most specific first: the generic causal LM adapter only claims models that describe their image vocabulary.
ADAPTERS: dict[str, type[UnifiedModelAdapter]] = {
    JanusAdapter.family: JanusAdapter,
    Emu3Adapter.family: Emu3Adapter,
    CausalLMAdapter.family: CausalLMAdapter,
}


def adapter_class(model: nn.Module | None = None, name: str | None = None) -> type[UnifiedModelAdapter]:
    """The adapter class named ``name``, or the first one that claims ``model``."""
    if name is not None:
        if name not in ADAPTERS:
            raise ValueError(f"Unknown model_adapter {name!r}; choose one of {sorted(ADAPTERS)}.")
        return ADAPTERS[name]
    if model is None:
        raise ValueError("adapter_class needs a model or an adapter name.")
    for cls in ADAPTERS.values():
        if cls.matches(model):
            return cls
    raise ValueError(
        f"No adapter handles {type(unwrap_model(model)).__name__}. Supported families: {sorted(ADAPTERS)}; a plain causal "
        "LM needs `config.unified_image` (see trl_unified.models.causal_lm), or pass `model_adapter`."
    )


def load_pretrained(name_or_path: str, adapter_name: str | None = None, **kwargs: Any) -> nn.Module:
    """Load a model with its family's class: the adapter whose model class reads this ``model_type``."""
    from transformers import AutoConfig

    if adapter_name is not None:
        return adapter_class(name=adapter_name).model_class.from_pretrained(name_or_path, **kwargs)
    model_type = AutoConfig.from_pretrained(name_or_path).model_type
    for cls in ADAPTERS.values():
        config_class = getattr(cls.model_class, "config_class", None)
        if config_class is not None and config_class.model_type == model_type:
            return cls.model_class.from_pretrained(name_or_path, **kwargs)
    return CausalLMAdapter.model_class.from_pretrained(name_or_path, **kwargs)


def get_adapter(model: nn.Module, processing_class: Any, name: str | None = None) -> UnifiedModelAdapter:
    """Build the adapter for ``model`` (auto-detected unless ``name`` is given)."""
    return adapter_class(model, name)(model, processing_class)
