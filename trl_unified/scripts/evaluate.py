"""`trl-unified evaluate`: per-category scores with 95% intervals, switch rate, reasoning length, samples and report.

    trl-unified evaluate --model_name_or_path deepseek-community/Janus-Pro-1B --prompts evaluation_metadata.jsonl \
        --image_rewards vqascore:Qwen/Qwen2.5-VL-3B-Instruct --modes staged unified image_only --num_samples 4 \
        --output_dir evals --name base --geneval_layout

Writes `<output_dir>/<name>_<mode>/` for each mode (see `trl_unified.evaluation.evaluate`). Then
`trl-unified compare` and `trl-unified target`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

_MODEL_REWARDS = ("clip", "vqascore", "judge")


def make_parser(prog: str = "trl-unified evaluate"):
    from trl import TrlParser

    from ..evaluation.evaluation_config import EvaluationConfig

    return TrlParser((EvaluationConfig,), prog=prog)


def main(argv: list[str] | None = None) -> None:
    (config,) = make_parser().parse_args_and_config(args=argv)
    run(config)


def load_rewards(specs: list[str], device: str | None) -> list:
    from ..rewards.registry import load_reward

    return [
        load_reward(s, **({"device": device} if device and s.split(":", 1)[0] in _MODEL_REWARDS else {})) for s in specs
    ]


def categorizer(spec: str | None):
    if spec is None:
        return None
    if spec == "shapes":
        from ..shapes.prompt_source import shapes_category

        return shapes_category
    from ..rewards.registry import _import_callable

    if not spec.startswith("python:"):
        raise SystemExit(f"trl-unified evaluate: --categorize must be `shapes` or `python:<module>:<function>`: {spec}")
    return _import_callable(spec.removeprefix("python:"), spec)


def load_model(config) -> tuple[Any, Any]:
    """The model (with its PEFT adapter merged, if any) on the best device, and its processor."""
    import torch
    from transformers import AutoProcessor

    from ..models.registry import load_pretrained

    kwargs: dict[str, Any] = {"revision": config.model_revision} if config.model_revision else {}
    if config.dtype:
        kwargs["dtype"] = config.dtype if config.dtype == "auto" else getattr(torch, config.dtype)
    model = load_pretrained(config.model_name_or_path, adapter_name=config.model_adapter, **kwargs)
    if config.adapter_path:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, config.adapter_path).merge_and_unload()
    model.to("cuda" if torch.cuda.is_available() else "cpu").eval()
    processor = AutoProcessor.from_pretrained(
        config.model_name_or_path, **({"revision": config.model_revision} if config.model_revision else {})
    )
    return model, processor


def start_reporters(config) -> None:
    """Start a wandb run for ``--report_to wandb`` when none is active (a Trainer does this for training)."""
    if not config.report_to or not {"wandb", "all"} & set(config.report_to):
        return
    try:
        import wandb
    except ImportError:
        raise SystemExit("trl-unified evaluate: --report_to wandb needs wandb (pip install wandb)") from None
    if wandb.run is None:
        wandb.init(job_type="evaluation", config={k: v for k, v in vars(config).items() if v is not None})


def run(config) -> list:
    from ..evaluation.evaluate import evaluate_model
    from ..evaluation.prompt_sets import load_prompt_set
    from ..models.registry import get_adapter

    for required in ("model_name_or_path", "prompts", "output_dir"):
        if not getattr(config, required):
            raise SystemExit(f"trl-unified evaluate: --{required} is required")
    prompt_set = load_prompt_set(
        config.prompts,
        prompt_column=config.prompt_column,
        category_column=config.category_column,
        categorize=categorizer(config.categorize),
        split=config.prompts_split,
        config_name=config.prompts_config,
        max_prompts=config.max_prompts,
    )
    start_reporters(config)
    model, processor = load_model(config)
    adapter = get_adapter(model, processor, config.model_adapter)
    name = config.name or Path(config.adapter_path or config.model_name_or_path).name
    results = []
    for mode in config.modes:
        result = evaluate_model(
            model,
            processor,
            prompt_set,
            image_rewards=load_rewards(config.image_rewards, config.reward_device),
            text_rewards=load_rewards(config.text_rewards, config.reward_device),
            image_reward_weights=config.image_reward_weights,
            text_reward_weights=config.text_reward_weights,
            mode=mode,
            samples_per_prompt=config.num_samples,
            samples_per_category=config.samples_per_category,
            sampling=config.sampling_config(),
            metric=config.metric,
            threshold=config.threshold,
            confidence=config.confidence,
            output_dir=config.output_dir,
            name=f"{name}_{mode}",
            adapter=adapter,
            geneval_layout=config.geneval_layout,
            report_to=config.report_to,
        )
        print(summary(result))
        results.append(result)
    return results


def summary(result) -> str:
    """A few lines for the terminal."""
    lines = [
        (
            f"{result.name}: {result.num_samples} samples, metric {result.metric} >= {result.threshold}, "
            f"switch rate {100 * result.switch_rate:.1f}%, mean reasoning {result.mean_reasoning_tokens:.1f} tokens"
        )
    ]
    for category, r in [*result.categories.items(), ("all", result.overall)]:
        a = r.accuracy
        lines.append(
            f"  {category:<16} accuracy {100 * a.estimate:5.1f}% [{100 * a.low:5.1f}, {100 * a.high:5.1f}]"
            f"  score {r.score.estimate:.3f}  (n={r.num_samples})"
        )
    if result.folder:
        lines.append(f"  written to {result.folder} (report.html)")
    return "\n".join(lines)
