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


def checkpoint_model_type(name_or_path: str, **kwargs: Any) -> str:
    """The ``model_type`` of a checkpoint's config; a clear error for a path that is not there or holds no model."""
    import os

    from transformers import AutoConfig

    looks_local = os.path.isabs(name_or_path) or name_or_path.startswith((".", "~")) or name_or_path.count("/") > 1
    if looks_local and not os.path.isdir(os.path.expanduser(name_or_path)):
        raise ValueError(f"model {name_or_path!r}: no such folder.")
    try:
        return AutoConfig.from_pretrained(name_or_path, revision=kwargs.get("revision")).model_type
    except (OSError, ValueError) as error:
        where = "folder" if os.path.isdir(name_or_path) else "Hub model id (and no such local folder)"
        raise ValueError(f"model {name_or_path!r}: cannot read a model config from this {where}: {error}") from None


def load_pretrained(name_or_path: str, adapter_name: str | None = None, **kwargs: Any) -> nn.Module:
    """Load a model with its family's class: the adapter whose model class reads this ``model_type``.

    The checkpoint's config is read first, so a wrong path, or an adapter that does not read this checkpoint's
    ``model_type`` (e.g. ``janus`` for a Llama folder, which would build a full-size random Janus), fails at once.
    """
    model_type = checkpoint_model_type(name_or_path, **kwargs)
    if adapter_name is not None:
        cls = adapter_class(name=adapter_name)
        expected = getattr(getattr(cls.model_class, "config_class", None), "model_type", None)
        if expected is not None and expected != model_type:
            raise ValueError(
                f"model_adapter {adapter_name!r} reads {expected!r} checkpoints; {name_or_path} is a {model_type!r} "
                "checkpoint. Leave model_adapter unset to detect the family."
            )
        return cls.model_class.from_pretrained(name_or_path, **kwargs)
    for cls in ADAPTERS.values():
        config_class = getattr(cls.model_class, "config_class", None)
        if config_class is not None and config_class.model_type == model_type:
            return cls.model_class.from_pretrained(name_or_path, **kwargs)
    return CausalLMAdapter.model_class.from_pretrained(name_or_path, **kwargs)


def get_adapter(model: nn.Module, processing_class: Any, name: str | None = None) -> UnifiedModelAdapter:
    """Build the adapter for ``model`` (auto-detected unless ``name`` is given)."""
    return adapter_class(model, name)(model, processing_class)
