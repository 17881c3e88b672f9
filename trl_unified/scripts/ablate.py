"""`trl-unified ablate`: the method's four findings, measured with seeds on the shapes world (see `trl_unified.study`).

    trl-unified ablate --output_dir outputs/study                      # the default study (26 min on 2 cores)
    trl-unified ablate --quick --seeds 0 1 --output_dir /tmp/study     # a small version, for tests
    trl-unified ablate --arms sft broad_prompts --seeds 0 1 2 3 4      # some arms (rwr always runs), more seeds

On your own model, build a `trl_unified.study.StudyWorld` and call `run_study` (docs/study.md).
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> None:
    from trl import TrlParser

    from ..cli import concise_errors
    from ..shapes.study import shapes_study_world
    from ..study import StudyConfig, run_study

    parser = concise_errors(TrlParser((StudyConfig,), prog="trl-unified ablate"))
    (config,) = parser.parse_args_and_config(args=argv)
    run_study(config, shapes_study_world(config))
