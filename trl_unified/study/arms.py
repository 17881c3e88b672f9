"""The study's arms and the four findings they test.

An arm is a prompt pool (``targeted``: from the base model's weakness report; ``broad``: the broad corpus's mix;
``aligned``: the evaluation set's mix; all the same size and drawn from the same source) plus a weighting (overrides
of :class:`~trl_unified.trainer.rwr_config.RewardWeightedMultimodalConfig`). Every arm starts from the base model and
self-generates with the same number of samples; arms on the same pool train on the same samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

POOLS = ("targeted", "broad", "aligned")


@dataclass(frozen=True)
class Arm:
    name: str
    pool: str
    weighting: dict[str, Any] = field(default_factory=dict)
    help: str = ""


#: ``rwr`` is the method; every other arm changes one thing.
ARMS = (
    Arm("rwr", "targeted", {}, "both modalities weighted by their reward, weakness-targeted prompts (the method)"),
    Arm(
        "text_reward_only", "targeted", {"image_reward_column": None}, "only the text weighted (image tokens weight 1)"
    ),
    Arm(
        "image_reward_only", "targeted", {"text_reward_column": None}, "only the image weighted (text tokens weight 1)"
    ),
    Arm("sft", "targeted", {"reward_weighting": "none"}, "plain SFT on the same samples"),
    Arm("broad_prompts", "broad", {}, "prompts uniform over the source (an image-caption corpus's analogue)"),
    Arm("aligned_prompts", "aligned", {}, "prompts drawn with the evaluation set's category mix"),
)
ARM_NAMES = tuple(a.name for a in ARMS)
#: The base model's evaluations (``base_<mode>``); the method's arm is evaluated in these modes too (finding 3).
MODES = ("staged", "unified", "image_only")


@dataclass(frozen=True)
class Finding:
    """A claim of the source study, as comparisons ``(baseline, other)`` of evaluations named ``<model>_<mode>``;
    the claim holds when the baseline is better."""

    number: int
    claim: str
    pairs: tuple[tuple[str, str], ...]
    measure: str = "accuracy"  # or "switch_rate"


FINDINGS = (
    Finding(
        1,
        "Weighting both modalities by reward beats weighting only the text, only the image, and plain SFT",
        (
            ("rwr_unified", "text_reward_only_unified"),
            ("rwr_unified", "image_reward_only_unified"),
            ("rwr_unified", "sft_unified"),
        ),
    ),
    Finding(
        2,
        "Weakness-targeted prompts beat broad and benchmark-aligned prompts at the same number of samples",
        (("rwr_unified", "broad_prompts_unified"), ("rwr_unified", "aligned_prompts_unified")),
    ),
    Finding(
        3,
        "Reasoning then drawing beats drawing from the bare prompt, before (staged) and after (unified) post-training",
        (("base_staged", "base_image_only"), ("rwr_unified", "rwr_image_only")),
    ),
    Finding(
        4,
        "Post-training makes the model switch to the image by itself",
        (("rwr_unified", "base_unified"),),
        measure="switch_rate",
    ),
)


def select_arms(names: list[str] | None) -> tuple[Arm, ...]:
    """The arms named (all by default); ``rwr`` is always run, every finding compares against it."""
    if not names:
        return ARMS
    unknown = sorted(set(names) - set(ARM_NAMES))
    if unknown:
        raise ValueError(f"arms {unknown} are unknown; the arms are {list(ARM_NAMES)}")
    return tuple(a for a in ARMS if a.name == "rwr" or a.name in names)


__all__ = ["ARMS", "ARM_NAMES", "FINDINGS", "MODES", "POOLS", "Arm", "Finding", "select_arms"]
