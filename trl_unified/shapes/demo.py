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
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..evaluation import EvalResult, PromptSet, compare_evaluations, evaluate_model, load_prompt_set, write_report
from ..study.rounds import RoundSettings, check_evaluation, check_positive, post_train, self_generate_round
from ..targeting import build_targeted_pool, weakness_report, write_pool
from .model import load_shapes_model
from .prompt_source import ShapesPromptSource, shapes_category
from .prompts import CATEGORIES, all_prompt_specs, is_held_out
from .rewards import shapes_image_partial_reward, shapes_image_reward, shapes_text_reward

#: The column that decides a sample's verdict: the verifier's exact 0/1 verdict.
METRIC = "image/shapes_image_reward"
#: Rewards of self-generated samples: the plan checker for the text, the verifier's partial credit (1 exactly when
#: the image is correct) for the image.
TEXT_REWARDS = (shapes_text_reward,)
TRAINING_IMAGE_REWARDS = (shapes_image_partial_reward,)
#: Post-training settings of the shapes model. The output head is trained in full beside the LoRA layers: the switch
#: (<boi> after the reasoning) is largely a shift of the head's logits, which the projections' LoRA learns only slowly
#: (measured: 64% vs 100% switch rate).
TRAINING = {"max_length": 160, "lora_modules_to_save": ["lm_head"]}


@dataclass
class DemoConfig(RoundSettings):
    """Settings of `trl-unified demo` (every field is a command-line option and a `--config` YAML key); the sampling
    and training ones are :class:`~trl_unified.study.rounds.RoundSettings`'."""

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
    reward_weighting: str = field(
        default="exp", metadata={"help": "RWR weighting (see RewardWeightedMultimodalConfig)."}
    )
    quick: bool = field(default=False, metadata={"help": "A small, fast version (for tests): fewer prompts and steps."})
    seed: int = field(default=0, metadata={"help": "Seed of prompts, sampling and training."})

    def __post_init__(self):
        self._check()
        if self.quick:
            self.shrink(rounds=1, eval_prompts_per_category=3, eval_samples_per_category=1, pool_size=10,
                        samples_per_prompt=2, epochs=1.0, batch_size=8)  # fmt: skip

    def _check(self) -> None:
        from ..weighting import SCHEMES

        super()._check()
        check_evaluation(self)
        check_positive(self, "rounds", zero=True)
        if self.reward_weighting not in SCHEMES:
            raise ValueError(f"reward_weighting must be one of {list(SCHEMES)}, got {self.reward_weighting!r}")


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


def save_round_model(model, tokenizer, folder: Path) -> None:
    """Save a round's merged model under ``folder / "merged"`` with its adapter's card (licence included), and point
    the model at it, so the next round's model card names this model, not the shipped one, as its base."""
    merged = folder / "merged"
    model.save_pretrained(merged)
    tokenizer.save_pretrained(merged)
    shutil.copy(folder / "train" / "model" / "README.md", merged / "README.md")
    model.config._name_or_path = str(merged)


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
    sampling = cfg.sampling(cfg.seed)

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
            model, tokenizer, pool, cfg, sampling, folder / "generated", text_rewards=TEXT_REWARDS,
            image_rewards=TRAINING_IMAGE_REWARDS,
        )  # fmt: skip
        model = post_train(
            model, tokenizer, dataset, cfg, folder / "train", seed=cfg.seed, reward_weighting=cfg.reward_weighting,
            **TRAINING,
        )  # fmt: skip
        if round_index < cfg.rounds:  # the next round trains this model: its card must name it as the base
            save_round_model(model, tokenizer, folder)
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
