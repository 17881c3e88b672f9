"""Weakness-targeted prompt pools: where the model fails most, drawn from a prompt source (``trl-unified target``).

See :mod:`.weakness` (failure rates and shares), :mod:`.sources` (datasets, YAML grammars, a text model) and
:mod:`.pool` (the pool and its files), and ``docs/targeting.md``.
"""

from .pool import POOL_FILE, build_pool, build_targeted_pool, draw_pool, target, write_pool
from .sources import DatasetPromptSource, GrammarPromptSource, LMPromptSource, PromptSource
from .weakness import CategoryTarget, WeaknessReport, weakness_report

__all__ = [
    "POOL_FILE",
    "CategoryTarget",
    "DatasetPromptSource",
    "GrammarPromptSource",
    "LMPromptSource",
    "PromptSource",
    "WeaknessReport",
    "build_pool",
    "build_targeted_pool",
    "draw_pool",
    "target",
    "weakness_report",
    "write_pool",
]
