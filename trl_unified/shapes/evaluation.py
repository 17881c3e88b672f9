"""Evaluate a shapes model: sample, verify, and write what a person needs to check the numbers.

For each evaluation, under ``<output_dir>/<name>/``: ``samples.jsonl`` (one row per sample: ``prompt``,
``category``, ``reasoning``, ``image`` -- the PNG's path relative to that file --, ``switched``, ``correct``), the
PNGs in ``images/``, and ``grid.png`` (the first samples side by side, a green or red frame for the verdict).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from PIL import Image, ImageDraw

from ..generation.sampler import SamplingConfig, generate_samples
from ..models.registry import get_adapter
from .codec import ShapesImageCodec
from .prompts import CATEGORIES, parse_prompt
from .verify import verify


@dataclass
class EvalResult:
    """Per-category accuracy and autonomous switch rate of one evaluation."""

    name: str
    mode: str
    accuracy: dict[str, float]
    switch_rate: float
    num_samples: int
    rows: list[dict] = field(repr=False, default_factory=list)

    @property
    def mean_accuracy(self) -> float:
        """Mean over the categories present (each category counts the same)."""
        return sum(self.accuracy.values()) / max(len(self.accuracy), 1)


def evaluate_shapes(
    model,
    tokenizer,
    prompts: list[str],
    *,
    mode: str,
    sampling: SamplingConfig,
    samples_per_prompt: int = 1,
    output_dir: str | Path | None = None,
    name: str | None = None,
    grid_size: int = 8,
) -> EvalResult:
    """Sample ``samples_per_prompt`` images per prompt in ``mode``, verify each, and (optionally) write the files."""
    adapter = get_adapter(model, tokenizer)
    name = name or mode
    samples = generate_samples(model, adapter, prompts, samples_per_prompt, replace(sampling, mode=mode), progress=True)
    codec = ShapesImageCodec()
    rows, per_category = [], {}
    folder = Path(output_dir) / name if output_dir is not None else None
    if folder is not None:
        (folder / "images").mkdir(parents=True, exist_ok=True)
    for i, sample in enumerate(samples):
        category = parse_prompt(sample.prompt).category
        correct = verify(sample.prompt, sample.image_tokens).correct
        per_category.setdefault(category, []).append(correct)
        row = {
            "prompt": sample.prompt,
            "category": category,
            "reasoning": sample.reasoning,
            "image": f"images/{i:05d}.png",
            "switched": sample.switched,
            "correct": correct,
        }
        if folder is not None:
            (sample.image or codec.decode(sample.image_tokens)).save(folder / row["image"])
        rows.append(row)
    result = EvalResult(
        name=name,
        mode=mode,
        accuracy={c: sum(v) / len(v) for c in CATEGORIES if (v := per_category.get(c))},
        switch_rate=sum(r["switched"] for r in rows) / max(len(rows), 1),
        num_samples=len(rows),
        rows=rows,
    )
    if folder is not None:
        with open(folder / "samples.jsonl", "w") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
        image_grid([folder / r["image"] for r in rows], [r["correct"] for r in rows], grid_size).save(folder / "grid.png")
    return result


def image_grid(paths: list[Path], verdicts: list[bool], columns: int = 8, scale: int = 2) -> Image.Image:
    """Up to ``columns**2`` images in a grid, each framed green (correct) or red (wrong)."""
    paths, verdicts = paths[: columns * columns], verdicts[: columns * columns]
    tile, pad = 64 * scale, 4
    rows = max(1, -(-len(paths) // columns))
    grid = Image.new("RGB", (columns * (tile + 2 * pad), rows * (tile + 2 * pad)), (40, 40, 40))
    draw = ImageDraw.Draw(grid)
    for i, (path, ok) in enumerate(zip(paths, verdicts)):
        x, y = (i % columns) * (tile + 2 * pad), (i // columns) * (tile + 2 * pad)
        draw.rectangle([x, y, x + tile + 2 * pad - 1, y + tile + 2 * pad - 1], fill=(40, 190, 70) if ok else (230, 40, 40))
        grid.paste(Image.open(path).resize((tile, tile), Image.NEAREST), (x + pad, y + pad))
    return grid
