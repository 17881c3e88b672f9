"""The study: the method's four findings measured with seeds on one command (`trl-unified ablate`).

:mod:`.arms` (the arms and findings), :mod:`.world` (what the study needs of a model and a task), :mod:`.rounds` (one
self-generate -> train round, shared with the demo), :mod:`.run` (the loop) and :mod:`.table` (mean and spread over
seeds, verdicts). See ``docs/study.md``.
"""

from .arms import ARMS, FINDINGS, Arm, Finding
from .rounds import RoundSettings, post_train, self_generate_round
from .run import run_study
from .study_config import StudyConfig
from .table import StudyTable, study_table
from .world import StudyWorld

__all__ = [
    "ARMS",
    "FINDINGS",
    "Arm",
    "Finding",
    "RoundSettings",
    "StudyConfig",
    "StudyTable",
    "StudyWorld",
    "post_train",
    "run_study",
    "self_generate_round",
    "study_table",
]
