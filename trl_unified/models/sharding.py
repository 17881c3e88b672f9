"""Whole parameters outside the training forward, under DeepSpeed ZeRO-3 (sampling, image encoding).

ZeRO-3 keeps a slice of every parameter on each process and gathers a module's parameters only around that module's
forward, through hooks the engine installs. Code that runs outside that forward on partitioned weights (the VQ
encoder during dataset preparation, with ``zero3_init_flag``) sees empty tensors; a sampler that runs through the
engine's hooks gathers and frees every layer at every step, a collective each time, which hangs as soon as two
processes sample different numbers of tokens or prompts. Both are solved by gathering once, up front, on every
process (one collective), then running freely.

Nothing here imports DeepSpeed unless it is already loaded: without it, there is nothing to gather.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from torch import nn

from .base import unwrap_model

F = TypeVar("F", bound=Callable[..., Any])


def _partitioned(module: nn.Module) -> list[nn.Parameter]:
    """Parameters of ``module`` that ZeRO-3 holds partitioned right now."""
    if "deepspeed" not in sys.modules:
        return []
    from deepspeed.runtime.zero.partition_parameters import ZeroParamStatus

    return [p for p in module.parameters() if getattr(p, "ds_status", None) == ZeroParamStatus.NOT_AVAILABLE]


def _engine(model: nn.Module) -> Any:
    """``model`` if it is a DeepSpeed engine, else None."""
    deepspeed = sys.modules.get("deepspeed")
    return model if deepspeed is not None and isinstance(model, deepspeed.DeepSpeedEngine) else None


@contextmanager
def gathered_parameters(modules: nn.Module | list[nn.Module]) -> Iterator[None]:
    """Whole ZeRO-3 parameters of ``modules`` inside the block, read-only; a no-op when none is partitioned.

    A collective when it gathers: every process must enter it (e.g. each process preparing its dataset).
    """
    modules = modules if isinstance(modules, list) else [modules]
    params = [p for module in modules for p in _partitioned(module)]
    if not params:
        yield
        return
    import deepspeed

    with deepspeed.zero.GatheredParameters(params, modifier_rank=None):
        yield


@contextmanager
def unwrapped_for_generation(model: nn.Module) -> Iterator[nn.Module]:
    """The module to sample from, every parameter whole, for as many forwards as each process wants.

    Under a ZeRO-3 ``DeepSpeedEngine`` (``trainer.model_wrapped``): its parameters are gathered and its hooks taken
    off for the block, as TRL's ``unwrap_model_for_generation`` does (with TRL's own hook helpers), so the forwards
    inside are local and processes may finish at different times. A model partitioned by ``zero3_init_flag`` but not
    (yet) in an engine is gathered. Anything else (one process, DDP, ZeRO-1/2) is yielded unwrapped, unchanged.
    Every process must enter the block when there is something to gather.
    """
    engine = _engine(model)
    module = model.module if engine is not None or isinstance(model, nn.parallel.DistributedDataParallel) else model
    if engine is None or engine.zero_optimization_stage() != 3:
        partitioned = _partitioned(module)
        if partitioned and hasattr(unwrap_model(module), "ds_grads_remaining"):
            raise ValueError(
                "This model's parameters are partitioned by a DeepSpeed ZeRO-3 engine: pass the engine "
                "(`trainer.model_wrapped`), not the module inside it, so its hooks can be set aside while sampling."
            )
        with gathered_parameters(module):
            yield module
        return

    import deepspeed
    from trl.models.utils import add_hooks, remove_hooks

    with deepspeed.zero.GatheredParameters(list(module.parameters()), modifier_rank=None):
        remove_hooks(engine)
        try:
            yield module
        finally:
            add_hooks(engine)


@contextmanager
def loading_whole_models() -> Iterator[None]:
    """``from_pretrained`` inside the block builds whole models even under a ZeRO-3 launch.

    transformers partitions every model it loads once a ZeRO-3 config is registered (``zero3_init_flag``, set when
    the training arguments are parsed). Frozen helpers that never enter the engine (reward judges) must be whole on
    every process: partitioned, they would compute on empty tensors outside any forward that gathers them.
    """
    from transformers.integrations import deepspeed as hf_deepspeed

    reference = hf_deepspeed._hf_deepspeed_config_weak_ref  # transformers keeps the registered config only here
    config = reference() if reference is not None else None
    if config is None:
        yield
        return
    hf_deepspeed.unset_hf_deepspeed_config()
    try:
        yield
    finally:
        hf_deepspeed.set_hf_deepspeed_config(config)


def gathers_parameters(function: F) -> F:
    """Decorate an entry point whose first argument is the model: it runs inside ``unwrapped_for_generation``."""

    @functools.wraps(function)
    def wrapper(model: nn.Module, *args: Any, **kwargs: Any) -> Any:
        with unwrapped_for_generation(model) as module:
            return function(module, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
