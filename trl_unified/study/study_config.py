"""Settings of `trl-unified ablate` (every field is a command-line option and a `--config` YAML key)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .rounds import RoundSettings, check_evaluation


@dataclass
class StudyConfig(RoundSettings):
    """The study: every arm (:mod:`.arms`) for each seed, one self-generate -> train round from the base model each,
    evaluated on held-out prompts. The sampling and training settings are :class:`.rounds.RoundSettings`' (the demo's
    defaults)."""

    output_dir: str = field(default="outputs/study", metadata={"help": "Where evaluations, pools and tables go."})
    base_model: str | None = field(
        default=None, metadata={"help": "Base shapes model folder (default: the shipped one)."}
    )
    eval_prompts: str | None = field(
        default=None, metadata={"help": "File with one held-out shapes prompt per line (default: held-out prompts)."}
    )
    eval_prompts_per_category: int = field(default=24, metadata={"help": "Built-in evaluation prompts per category."})
    eval_samples_per_category: int = field(
        default=192,
        metadata={"help": "Evaluation samples per category, spread evenly over its prompts (4x the demo's: cheap)."},
    )
    seeds: list[int] = field(
        default_factory=lambda: [0, 1, 2, 3, 4],
        metadata={"help": "Seeds: each reruns every arm (sampling, pools and training; the evaluation prompts stay)."},
    )
    arms: list[str] | None = field(
        default=None,
        metadata={"help": "Arms to run (default: all; `rwr` always runs): see `trl_unified.study.arms`."},
    )
    quick: bool = field(default=False, metadata={"help": "A small, fast version (for tests): fewer prompts and steps."})

    def __post_init__(self):
        self._check()
        if self.quick:
            self.seeds = self.seeds[:2]
            self.shrink(eval_prompts_per_category=2, eval_samples_per_category=4, pool_size=8, samples_per_prompt=2,
                        epochs=1.0, batch_size=8)  # fmt: skip

    def _check(self) -> None:
        from .arms import select_arms

        super()._check()
        check_evaluation(self)
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be one or more distinct integers, got {self.seeds!r}")
        select_arms(self.arms)


__all__ = ["StudyConfig"]
