"""The main job on the shapes world: the whole method, end to end, on a CPU in minutes.

1. Evaluate the base model in ``staged`` and ``unified`` modes (and ``image_only``, for reference) on held-out
   prompts (accuracy per category, switch rate) with the library's ``evaluate_model``, the verifier as the reward.
2. Weakness report: the categories where its best mode fails; the targeted prompt pool leans on them
   (``trl_unified.targeting``, with the shapes grammar as the prompt source).
3. Self-generate K samples per pool prompt in ``unified`` mode and score them (text: the plan checker; image: the
   verifier's partial credit, which is 1 exactly when the image is correct).
4. Reward-weighted post-training (LoRA by default) with ``RewardWeightedMultimodalTrainer``.
5. Evaluate again in ``unified`` mode; repeat for ``rounds``.
6. Print a before/after table per category and save samples, image grids, a comparison (Markdown, JSON, plot) and a
   ``report.html`` to look at under ``output_dir``.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..evaluation import EvalResult, PromptSet, compare_evaluations, evaluate_model, load_prompt_set, write_report
from ..generation.sampler import SamplingConfig
from ..targeting import build_targeted_pool, weakness_report, write_pool
from .model import load_shapes_model
from .prompt_source import ShapesPromptSource, shapes_category
from .prompts import CATEGORIES, all_prompt_specs, is_held_out
from .rewards import shapes_image_reward, shapes_text_reward

#: The column that decides a sample's verdict: the verifier's exact 0/1 verdict.
METRIC = "image/shapes_image_reward"


@dataclass
class DemoConfig:
    """Settings of `trl-unified demo` (every field is a command-line option and a `--config` YAML key)."""

    output_dir: str = field(default="outputs/demo", metadata={"help": "Where samples, grids, plot and model go."})
    base_model: str | None = field(default=None, metadata={"help": "Base shapes model dir (default: the shipped one)."})
    eval_prompts: str | None = field(
        default=None, metadata={"help": "File with one evaluation prompt per line (default: held-out prompts)."}
    )
    eval_prompts_per_category: int = field(default=24, metadata={"help": "Built-in evaluation prompts per category."})
    eval_samples_per_category: int = field(
        default=48,
        metadata={"help": "Samples drawn per category, spread evenly over its prompts (at least one per prompt)."},
    )
    rounds: int = field(default=4, metadata={"help": "Self-generate -> train -> evaluate rounds."})
    pool_size: int = field(default=192, metadata={"help": "Prompts in each round's targeted pool."})
    samples_per_prompt: int = field(default=8, metadata={"help": "K: self-generated samples per pool prompt."})
    min_category_share: float = field(
        default=0.1, metadata={"help": "Every category keeps at least this share of the pool, however good it is."}
    )
    reward_weighting: str = field(
        default="exp", metadata={"help": "RWR weighting (see RewardWeightedMultimodalConfig)."}
    )
    beta: float = field(default=0.05, metadata={"help": "Temperature of the exp weighting (rewards are in [0, 1])."})
    learning_rate: float = field(default=2e-3, metadata={"help": "Post-training learning rate."})
    epochs: float = field(default=3.0, metadata={"help": "Post-training epochs over each round's samples."})
    batch_size: int = field(default=32, metadata={"help": "Post-training batch size."})
    use_lora: bool = field(default=True, metadata={"help": "LoRA (merged after each round); False: full fine-tuning."})
    lora_r: int = field(default=32, metadata={"help": "LoRA rank."})
    guidance_scale: float = field(default=1.0, metadata={"help": "Classifier-free guidance on image codes (1: off)."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature (text and image)."})
    sampling_batch_size: int = field(default=64, metadata={"help": "Samples per sampler forward."})
    report_to: str = field(
        default="none",
        metadata={"help": "Reporters (`wandb`, ...) for training logs and the sample tables of evaluations."},
    )
    quick: bool = field(default=False, metadata={"help": "A small, fast version (for tests): fewer prompts and steps."})
    seed: int = field(default=0, metadata={"help": "Seed of prompts, sampling and training."})

    def __post_init__(self):
        self._check()
        if self.quick:
            self.rounds = min(self.rounds, 1)
            self.eval_prompts_per_category = min(self.eval_prompts_per_category, 3)
            self.eval_samples_per_category = 1
            self.pool_size = min(self.pool_size, 10)
            self.samples_per_prompt = min(self.samples_per_prompt, 2)
            self.epochs = min(self.epochs, 1.0)
            self.batch_size = min(self.batch_size, 8)

    def _check(self) -> None:
        """Every option, before minutes of work: a bad value fails at once, naming the option."""
        from ..weighting import SCHEMES

        def positive(name: str, kind: type = int, zero: bool = False) -> None:
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            ok = ok and (value >= 0 if zero else value > 0) and (kind is float or float(value).is_integer())
            if not ok:
                what = "an integer" if kind is int else "a finite number"
                raise ValueError(f"{name} must be {what} {'>= 0' if zero else '> 0'}, got {value!r}")

        for name in ("eval_prompts_per_category", "eval_samples_per_category", "pool_size", "samples_per_prompt",
                     "batch_size", "lora_r", "sampling_batch_size"):  # fmt: skip
            positive(name)
        positive("rounds", zero=True)
        for name in ("beta", "learning_rate", "epochs", "guidance_scale", "temperature"):
            positive(name, float)
        if not 0 <= self.min_category_share < 1:
            raise ValueError(f"min_category_share must be in [0, 1), got {self.min_category_share!r}")
        if self.reward_weighting not in SCHEMES:
            raise ValueError(f"reward_weighting must be one of {list(SCHEMES)}, got {self.reward_weighting!r}")
        if self.eval_prompts is not None and not Path(self.eval_prompts).is_file():
            raise ValueError(f"eval_prompts {self.eval_prompts}: no such file")
        if self.base_model is not None and not Path(self.base_model).is_dir():
            raise ValueError(f"base_model {self.base_model}: no such folder")


def default_eval_prompts(per_category: int, seed: int = 0) -> list[str]:
    """Held-out prompts (never in the base model's corpus nor in any pool), ``per_category`` of each category."""
    rng = random.Random(seed)
    prompts = []
    for category in CATEGORIES:
        held_out = [s.to_text() for s in all_prompt_specs(category) if is_held_out(s)]
        prompts += rng.sample(held_out, min(per_category, len(held_out)))
    return prompts


def read_prompts(path: str) -> PromptSet:
    """One prompt per line (blank lines skipped); every line must be in the shapes grammar (errors name the line)."""
    return load_prompt_set(path, categorize=shapes_category)


def self_generate_round(model, tokenizer, prompts: list[str], cfg: DemoConfig, sampling: SamplingConfig, folder: Path):
    """K scored unified-mode samples per prompt, in the trainer's format, with the self-generation utility."""
    from ..generation.self_generation import self_generate
    from ..generation.self_generation_config import SelfGenerationConfig
    from .rewards import shapes_image_partial_reward

    config = SelfGenerationConfig(
        output_dir=str(folder),
        num_samples=cfg.samples_per_prompt,
        mode="unified",
        max_text_tokens=sampling.max_text_tokens,
        temperature=sampling.temperature,
        image_temperature=sampling.image_temperature,
        guidance_scale=sampling.guidance_scale,
        batch_size=sampling.batch_size,
        seed=sampling.seed,
        report_to=[cfg.report_to],
    )
    return self_generate(
        model,
        tokenizer,
        [{"prompt": p, "prompt_id": i, "category": shapes_category(p)} for i, p in enumerate(prompts)],
        config,
        text_rewards=[shapes_text_reward],
        image_rewards=[shapes_image_partial_reward],
    )


def post_train(model, tokenizer, dataset, cfg: DemoConfig, folder: Path):
    """One round of reward-weighted post-training; returns the (LoRA-merged) model."""
    from peft import LoraConfig

    from ..trainer.rwr_config import RewardWeightedMultimodalConfig
    from ..trainer.rwr_trainer import RewardWeightedMultimodalTrainer

    args = RewardWeightedMultimodalConfig(
        output_dir=str(folder),
        reward_weighting=cfg.reward_weighting,
        beta=cfg.beta,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size,
        lr_scheduler_type="cosine",
        warmup_steps=10,
        logging_steps=10,
        save_strategy="no",
        report_to=cfg.report_to,
        use_cpu=True,
        seed=cfg.seed,
        max_length=160,
    )
    # The output head is trained in full beside the LoRA layers: the switch (<boi> after the reasoning) is largely a
    # shift of the head's logits, which the projections' LoRA learns only slowly (measured: 64% vs 100% switch rate).
    peft_config = (
        LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_r, target_modules=None, modules_to_save=["lm_head"])
        if cfg.use_lora
        else None
    )
    trainer = RewardWeightedMultimodalTrainer(
        model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config
    )
    trainer.train()
    trainer.save_model(str(folder / "model"))
    return trainer.model.merge_and_unload() if cfg.use_lora else trainer.model


def summary_table(base: dict[str, EvalResult], rounds: list[EvalResult]) -> str:
    """Before/after accuracy per category and switch rate, as a text table."""
    columns = [(f"base {r.mode}", r) for r in base.values()] + [
        (f"round {i + 1} unified", r) for i, r in enumerate(rounds)
    ]
    header = f"{'category':<12}" + "".join(f"{name:>20}" for name, _ in columns)
    lines = [header, "-" * len(header)]
    for category in CATEGORIES:
        cells = "".join(
            f"{100 * r.accuracy[category]:>19.1f}%" if category in r.accuracy else f"{'-':>20}" for _, r in columns
        )
        lines.append(f"{category:<12}{cells}")
    lines.append(f"{'mean':<12}" + "".join(f"{100 * r.mean_accuracy:>19.1f}%" for _, r in columns))
    lines.append(f"{'switch rate':<12}" + "".join(f"{100 * r.switch_rate:>19.1f}%" for _, r in columns))
    return "\n".join(lines)


def run_demo(cfg: DemoConfig) -> dict:
    """Run the main job; returns (and saves as ``summary.json``) the measured numbers."""
    start = time.time()
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    model, tokenizer = load_shapes_model(cfg.base_model)
    if cfg.eval_prompts:
        eval_set = read_prompts(cfg.eval_prompts)
    else:
        prompts = default_eval_prompts(cfg.eval_prompts_per_category, cfg.seed)
        eval_set = load_prompt_set(prompts, categorize=shapes_category)
    sampling = SamplingConfig(
        max_text_tokens=48,
        temperature=cfg.temperature,
        image_temperature=cfg.temperature,
        guidance_scale=cfg.guidance_scale,
        batch_size=cfg.sampling_batch_size,
        seed=cfg.seed,
    )

    def evaluate(name: str, mode: str) -> EvalResult:
        result = evaluate_model(
            model,
            tokenizer,
            eval_set,
            image_rewards=[shapes_image_reward],
            text_rewards=[shapes_text_reward],
            mode=mode,
            sampling=sampling,
            samples_per_category=cfg.eval_samples_per_category,
            metric=METRIC,
            output_dir=out / "eval",
            name=name,
            report_to=cfg.report_to,
        )
        print(
            f"[{time.time() - start:6.0f}s] {name}: mean accuracy {100 * result.mean_accuracy:.1f}%, "
            f"switch rate {100 * result.switch_rate:.1f}%"
        )
        return result

    # image_only (no reasoning) too: the base model's best mode is the bar post-training has to clear.
    base = {mode: evaluate(f"base_{mode}", mode) for mode in ("staged", "unified", "image_only")}
    best = max(base.values(), key=lambda r: r.mean_accuracy)
    current, rounds, reports = best, [], []
    used: set[str] = set(eval_set.prompts)
    source = ShapesPromptSource()
    for round_index in range(1, cfg.rounds + 1):
        report = weakness_report(current, cfg.min_category_share, CATEGORIES)
        pool = build_targeted_pool(report, source, cfg.pool_size, exclude=used, seed=cfg.seed + round_index)
        folder = out / f"round{round_index}"
        write_pool(pool, report, folder)
        weakest = sorted(current.accuracy, key=current.accuracy.get)[:2]
        reports.append({"round": round_index, "weakest": weakest, **report.to_dict()})
        print(
            f"[{time.time() - start:6.0f}s] round {round_index}: weakest {weakest}; pool shares "
            + ", ".join(f"{c} {100 * s:.0f}%" for c, s in report.shares.items())
        )
        dataset = self_generate_round(
            model, tokenizer, [p["prompt"] for p in pool], cfg, sampling, folder / "generated"
        )
        model = post_train(model, tokenizer, dataset, cfg, folder / "train")
        current = evaluate(f"round{round_index}_unified", "unified")
        rounds.append(current)

    final = rounds[-1] if rounds else best
    table = summary_table(base, rounds)
    print("\n" + table)
    comparison = compare_evaluations([best, final]) if rounds else None
    if comparison is not None:
        comparison.save(out, "comparison")
        print("\n" + comparison.to_markdown())
    write_report([best, final] if rounds else [best], out / "report.html", title="Shapes world: base vs post-trained")
    model.save_pretrained(out / "model")
    tokenizer.save_pretrained(out / "model")
    summary = {
        "config": asdict(cfg),
        "base": {
            m: {"accuracy": r.accuracy, "mean": r.mean_accuracy, "switch_rate": r.switch_rate} for m, r in base.items()
        },
        "rounds": [{"accuracy": r.accuracy, "mean": r.mean_accuracy, "switch_rate": r.switch_rate} for r in rounds],
        "weakness_reports": reports,
        "comparison": comparison.to_dict() if comparison is not None else None,
        "improvement_over_base_best_points": 100 * (final.mean_accuracy - best.mean_accuracy),
        "seconds": time.time() - start,
        "table": table,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(
        f"\nunified accuracy {100 * final.mean_accuracy:.1f}% vs base best ({best.mode}) {100 * best.mean_accuracy:.1f}% "
        f"({summary['improvement_over_base_best_points']:+.1f} points); switch rate {100 * final.switch_rate:.1f}%; "
        f"{summary['seconds']:.0f}s; outputs in {out}"
    )
    return summary


__all__ = ["DemoConfig", "default_eval_prompts", "read_prompts", "run_demo"]
