"""trl-unified: reward-weighted post-training of unified text+image models on their own samples, on top of TRL.

Public names are imported lazily, so ``import trl_unified.shapes`` (or the CLI's ``--help``) does not pull in torch.
"""

import importlib

__version__ = "0.1.0.dev0"

_EXPORTS = {
    "DataCollatorForInterleavedSequences": "trl_unified.data.collator",
    "RewardWeightedMultimodalConfig": "trl_unified.trainer.rwr_config",
    "RewardWeightedMultimodalTrainer": "trl_unified.trainer.rwr_trainer",
    "SelfGenerationConfig": "trl_unified.generation.self_generation_config",
    "self_generate": "trl_unified.generation.self_generation",
    "get_adapter": "trl_unified.models.registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'trl_unified' has no attribute {name!r}")
