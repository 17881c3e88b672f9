"""Turn the reward strings a user types on the command line into reward callables."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

REWARD_REGISTRY: dict[str, Callable[..., Any]] = {}
"""Named, ready-to-use rewards added at run time (:func:`register_reward`), so that a bare name works in
:func:`load_reward`; installed packages declare theirs as entry points (:mod:`trl_unified.plugins`)."""

_MODEL_PREFIXES = ("clip", "vqascore", "judge")


def installed_rewards() -> dict[str, str]:
    """Rewards that installed packages declare as ``trl_unified.rewards`` entry points (imported on first use)."""
    from ..plugins import REWARDS, registered

    return registered(REWARDS)


def register_reward(name: str, reward: Callable[..., Any] | None = None):
    """Add ``reward`` to :data:`REWARD_REGISTRY` under ``name``; usable as a decorator."""
    if ":" in name:
        raise ValueError(f"registered reward names cannot contain ':' (reserved for spec forms), got {name!r}")

    def add(fn: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(fn):
            raise TypeError(f"reward {name!r} is not callable: {fn!r}")
        REWARD_REGISTRY[name] = fn
        return fn

    return add if reward is None else add(reward)


def _valid_forms() -> str:
    names = ", ".join(sorted({*REWARD_REGISTRY, *installed_rewards()}))
    return (
        "valid reward specs are 'clip:<model path>', 'vqascore:<model path>', 'judge:<model path>', "
        f"'python:<module>:<function>', or a registered name: {names}"
    )


def _import_callable(target: str, spec: str) -> Callable[..., Any]:
    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path or ":" in attr_path:
        raise ValueError(f"bad reward spec {spec!r}: expected 'python:<module>:<function>'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"bad reward spec {spec!r}: cannot import module {module_name!r} ({exc})") from exc
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"bad reward spec {spec!r}: {module_name!r} has no attribute {attr_path!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"bad reward spec {spec!r}: {module_name}:{attr_path} is not callable")
    return obj


def load_reward(spec: str, **kwargs: Any) -> Callable[..., Any]:
    """Build a reward from a CLI string.

    * ``clip:<path>`` -> :class:`CLIPScoreReward`, ``vqascore:<path>`` -> :class:`VQAScoreReward`,
      ``judge:<path>`` -> :class:`ReasoningFaithfulnessReward`; ``kwargs`` (e.g. ``device``) go
      to the constructor.
    * ``python:<module>:<function>``: any importable callable (dotted attributes allowed).
    * a name in :data:`REWARD_REGISTRY`.

    Anything else raises ``ValueError`` listing these forms.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"empty reward spec {spec!r}; {_valid_forms()}")
    spec = spec.strip()
    if spec in REWARD_REGISTRY:
        return REWARD_REGISTRY[spec]
    installed = installed_rewards()
    if spec in installed:
        return _import_callable(installed[spec], spec)
    prefix, sep, rest = spec.partition(":")
    if sep and prefix == "python":
        return _import_callable(rest, spec)
    if sep and prefix in _MODEL_PREFIXES:
        if not rest:
            raise ValueError(f"reward spec {spec!r} is missing the model path; {_valid_forms()}")
        if prefix == "clip":
            from .clip_score import CLIPScoreReward

            return CLIPScoreReward(rest, **kwargs)
        if prefix == "vqascore":
            from .vqa_score import VQAScoreReward

            return VQAScoreReward(rest, **kwargs)
        from .judge import ReasoningFaithfulnessReward

        return ReasoningFaithfulnessReward(rest, **kwargs)
    raise ValueError(f"unknown reward spec {spec!r}; {_valid_forms()}")
