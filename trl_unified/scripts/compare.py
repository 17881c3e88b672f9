"""`trl-unified compare`: evaluations side by side (the first is the baseline), with differences and intervals.

    trl-unified compare --evaluations evals/base_unified evals/round1_unified --output_dir evals/compare

Writes `comparison.md`, `comparison.json`, `comparison.png` and `report.html` (samples side by side, filter by
category and by fixed / broken / still wrong) in `--output_dir`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CompareConfig:
    evaluations: list[str] = field(
        default_factory=list,
        metadata={"help": "Evaluation folders (written by `trl-unified evaluate`); first = baseline."},
    )
    output_dir: str | None = field(default=None, metadata={"help": "Where the comparison and report are written."})
    metric: str = field(default="accuracy", metadata={"help": "`accuracy` (share correct) or `score` (mean metric)."})
    title: str | None = field(default=None, metadata={"help": "Title of report.html."})


def main(argv: list[str] | None = None) -> None:
    from trl import TrlParser

    (config,) = TrlParser((CompareConfig,), prog="trl-unified compare").parse_args_and_config(args=argv)
    run(config)


def run(config: CompareConfig):
    from ..evaluation import compare_evaluations, load_evaluation, write_report

    if len(config.evaluations) < 2 or not config.output_dir:
        raise SystemExit("trl-unified compare: give --evaluations (two or more folders) and --output_dir")
    evaluations = [load_evaluation(path) for path in config.evaluations]
    comparison = compare_evaluations(evaluations, config.metric)
    comparison.save(config.output_dir)
    write_report(evaluations, f"{config.output_dir}/report.html", title=config.title)
    print(comparison.to_markdown())
    print(f"written to {config.output_dir} (comparison.md/.json/.png, report.html)")
    return comparison
