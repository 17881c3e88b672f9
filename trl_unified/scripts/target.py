"""`trl-unified target`: weakness report of an evaluation -> a targeted prompt pool (never an evaluation prompt).

    trl-unified target --evaluation evals/base_unified --source prompts/train_prompts.jsonl --pool_size 1000 \
        --output_dir round1
    trl-unified target --evaluation evals/base_unified --source grammar.yaml --pool_size 1000 --output_dir round1
    trl-unified target --evaluation evals/base_unified --lm_model Qwen/Qwen2.5-1.5B-Instruct --pool_size 200 \
        --output_dir round1

Writes `pool.jsonl` (`prompt`, `category`: `trl-unified generate --prompts round1/pool.jsonl`),
`weakness_report.json` and `weakness_report.md`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TargetConfig:
    evaluation: str | None = field(default=None, metadata={"help": "Evaluation folder (`trl-unified evaluate`)."})
    source: str | None = field(
        default=None,
        metadata={
            "help": "Prompt source: a categorised prompt set (file, folder or Hub id), a YAML grammar "
            "(`.yaml`/`.yml`), or `shapes` (the shapes grammar)."
        },
    )
    pool_size: int = field(default=1000, metadata={"help": "N: prompts in the pool."})
    min_share: float = field(default=0.1, metadata={"help": "Every category keeps at least this share of the pool."})
    categories: list[str] | None = field(
        default=None, metadata={"help": "Categories the pool covers (default: the source's, else the evaluation's)."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of the draws."})
    output_dir: str | None = field(default=None, metadata={"help": "Where pool.jsonl and the report go."})
    lm_model: str | None = field(
        default=None,
        metadata={
            "help": "Generate new prompts with this text model (causal LM), few-shot from `--source` (default: "
            "the evaluation's prompts), de-duplicated against the evaluation prompts."
        },
    )
    lm_max_new_tokens: int = field(default=40, metadata={"help": "Tokens per generated prompt."})
    lm_temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of the text model."})


def make_source(config: TargetConfig, evaluation):
    from ..targeting import DatasetPromptSource, GrammarPromptSource, LMPromptSource

    if config.lm_model:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(config.lm_model)
        model = AutoModelForCausalLM.from_pretrained(config.lm_model).eval()
        examples = config.source or [{"prompt": r["prompt"], "category": r["category"]} for r in evaluation.rows]
        return LMPromptSource(
            model, tokenizer, examples, max_new_tokens=config.lm_max_new_tokens, temperature=config.lm_temperature
        )
    if config.source == "shapes":
        from ..shapes.prompt_source import ShapesPromptSource

        return ShapesPromptSource()
    if config.source.endswith((".yaml", ".yml")):
        return GrammarPromptSource.from_yaml(config.source)
    return DatasetPromptSource(config.source)


def main(argv: list[str] | None = None) -> None:
    from trl import TrlParser

    (config,) = TrlParser((TargetConfig,), prog="trl-unified target").parse_args_and_config(args=argv)
    run(config)


def run(config: TargetConfig):
    from ..evaluation import load_evaluation
    from ..targeting import target

    if not config.evaluation or not config.output_dir or not (config.source or config.lm_model):
        raise SystemExit("trl-unified target: give --evaluation, --output_dir and --source (or --lm_model)")
    evaluation = load_evaluation(config.evaluation)
    pool, report = target(
        evaluation,
        make_source(config, evaluation),
        config.pool_size,
        min_share=config.min_share,
        categories=config.categories,
        seed=config.seed,
        output_dir=config.output_dir,
    )
    print(report.to_markdown())
    print(f"{len(pool)} prompts written to {config.output_dir}/pool.jsonl")
    return pool, report
