"""The dataset card (``README.md``) of a self-generated dataset: YAML metadata (model, prompts source, rewards, sampler
settings, statistics) and a readable summary, rendered from ``templates/self_generation_dataset_card.md``."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData

from ..cards import SOURCE_STUDY, SOURCE_STUDY_BIBTEX, TRL_BIBTEX, as_repo_id, card_license, hub_id_of

TEMPLATE = Path(__file__).resolve().parent.parent / "templates" / "self_generation_dataset_card.md"
TAGS = ["trl", "trl-unified", "self-generated", "synthetic", "reward-weighted-regression", "text-to-image"]

#: What each output column holds (reward columns are described by pattern).
COLUMN_DOCS: dict[str, str] = {
    "prompt": "the prompt text",
    "prompt_id": "stable id of the prompt (from the prompts source, else its index there); groups the K samples",
    "sample_index": "which of the prompt's K samples (0..K-1)",
    "reasoning": "the reasoning text the model wrote before the image (decoded `reasoning_ids`)",
    "image": "the generated image (PNG bytes)",
    "image_tokens": "the image's codes (what the trainer learns on)",
    "prompt_ids": "the prompt tokens exactly as the sampler fed them",
    "reasoning_ids": "the reasoning tokens exactly as sampled",
    "text/<name>": "one text reward's value (NaN: failed; null: not applicable)",
    "image/<name>": "one image reward's value (NaN: failed; null: not applicable)",
    "text_reward": "weighted sum of the text rewards",
    "image_reward": "weighted sum of the image rewards",
    "reward_errors": "what went wrong in the failed reward evaluations of this sample",
    "reward_failed": "whether any reward evaluation of this sample failed",
    "mode": "sampler mode (`unified`, `staged`, `image_only`)",
    "switched": "the model emitted begin-of-image by itself",
    "forced_switch": "begin-of-image was forced (EOS or text budget reached)",
    "seed": "the sampler seed of this prompt's call; with `sample_index` it regenerates the sample",
}


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M" if n < 10_000_000 else "n>10M"


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _clean(value: Any) -> Any:
    """YAML-safe: NaN/inf -> None, tuples -> lists, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def make_dataset_card(
    run_info: Mapping[str, Any], dataset_id: str | None = None, columns: Sequence[str] = ()
) -> DatasetCard:
    """The card of a finished run; ``run_info`` is the content of ``trl_unified_run.json``."""
    settings = run_info.get("settings", {})
    stats = run_info.get("statistics", {})
    # where the model came from (not fingerprinted: `model_source`) beside what identifies it (its weights)
    model = {**(run_info.get("model_source") or {}), **settings.get("model", {})}
    config = run_info.get("config", {})
    name = model.get("name_or_path")
    model_hub_id = hub_id_of(name)  # also for a model instance loaded from the Hub (or from its cache folder)
    licence = {"license": config["license"]} if config.get("license") else card_license(name)
    prompts_source = run_info.get("prompts_source")
    rewards = settings.get("rewards", {"text": [], "image": []})
    sampling = dict(settings.get("sampling", {}))
    if "batch_size" not in sampling and "batch_size" in config:
        sampling["batch_size"] = config["batch_size"]
    metadata = {
        "model": _clean(model),
        "prompts_source": run_info.get("prompts_source"),
        "num_samples_per_prompt": settings.get("num_samples"),
        "rewards": _clean(rewards),
        "sampler": _clean(sampling),
        "statistics": _clean(stats),
        "fingerprint": run_info.get("fingerprint"),
        "paper": f"arXiv:{SOURCE_STUDY}",
    }
    card_data = DatasetCardData(
        pretty_name=(dataset_id or "Self-generated samples").split("/")[-1],
        tags=list(TAGS),
        task_categories=["text-to-image"],
        size_categories=[_size_category(int(stats.get("num_samples", 0)))],
        source_datasets=[prompts_source] if prompts_source and as_repo_id(prompts_source) else None,
        trl_unified=metadata,
        **licence,
    )
    docs = []
    for column in columns:
        key = "text/<name>" if column.startswith("text/") else "image/<name>" if column.startswith("image/") else column
        docs.append((column, COLUMN_DOCS.get(key, "carried through from the prompts source")))
    return DatasetCard.from_template(
        card_data,
        template_path=str(TEMPLATE),
        pretty_name=card_data.pretty_name,
        dataset_id=dataset_id,
        model=model,
        model_hub_id=model_hub_id,
        licence=licence,
        output_dir=config.get("output_dir"),
        prompts_source=prompts_source,
        num_samples=settings.get("num_samples"),
        sampling=sampling,
        settings=settings,
        rewards=rewards,
        stats=stats,
        fingerprint=run_info.get("fingerprint"),
        column_docs=docs,
        versions=run_info.get("versions", {}),
        paper_id=SOURCE_STUDY,
        study_bibtex=SOURCE_STUDY_BIBTEX,
        trl_bibtex=TRL_BIBTEX,
        fmt=_fmt,
    )


__all__ = ["COLUMN_DOCS", "make_dataset_card"]
