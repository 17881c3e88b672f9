"""The base-model recipe: a shapes model that has the two skills but not the switch between them.

This reproduces the situation the method fixes. The base model is pretrained from scratch on two kinds of rows:

* **plans** ``[prompt] [plan] <eos>``: it learns to write a reasoning plan for a prompt, and to *stop*;
* **pictures** ``[prompt] [plan] <boi> [64 codes]``: it learns to draw after a plan once begin-of-image has been put
  there *by hand* (``<boi>`` is never a training target, as in unified models whose image mode is started by the
  caller). A quarter of the pictures (``1 - planned_fraction``) are drawn straight from the prompt
  (``[prompt] <boi> [codes]``, 15% of all rows), so the model can also draw without reasoning (``image_only`` mode)
  and the study can compare the two.

So it never emits ``<boi>`` after its reasoning (unified-mode switch rate near zero: it needs the staged pipeline).
Pictures of ``counting`` and ``position`` prompts are rarer in its corpus (``CATEGORY_MIX``), so it is clearly weaker
there. And, as with captions scraped from the web, a quarter of the prompts leave something out
(``unrequested_fraction``): the scene, its plan and its picture hold one more object than the prompt asks for. The base
model therefore plans (and draws) an unrequested object now and then, which the verifier counts as wrong. Held-out
prompts (``trl_unified.shapes.is_held_out``) are never used.

Training runs in ``passes``: each pass is one epoch over a fresh corpus of ``num_rows`` rows (seed ``seed + pass``)
with its own cosine schedule, the first at ``learning_rate``, the later ones at half of it (warm restarts). Later
passes mostly teach the model to draw what its plan says.

The shipped base model was made with the defaults (three passes over 40,000 rows each, seeds 0, 1 and 2,
``planned_fraction`` 0.75; about 20 minutes on 2 cores):

    python -m trl_unified.shapes.recipe --output-dir trl_unified/shapes/base_model
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import torch
from datasets import Dataset
from transformers import Trainer, TrainingArguments

from ..models.base import IGNORE_INDEX
from .model import build_shapes_model
from .prompts import CATEGORIES, all_prompt_specs, is_held_out
from .reasoning import write_plan
from .scene import random_scene_for, render, with_unrequested_object
from .tokenizer import codes_to_token_ids

#: Share of each category among the *picture* rows (plans are balanced): the base model's built-in weaknesses.
CATEGORY_MIX = {"single": 0.3, "two_object": 0.25, "color_attr": 0.25, "counting": 0.1, "position": 0.1}


def training_specs(seed: int = 0) -> dict[str, list]:
    """Every prompt of each category that is not held out for evaluation."""
    return {c: [s for s in all_prompt_specs(c) if not is_held_out(s)] for c in CATEGORIES}


def base_corpus(
    num_rows: int,
    seed: int = 0,
    picture_fraction: float = 0.6,
    planned_fraction: float = 0.75,
    unrequested_fraction: float = 0.25,
) -> Dataset:
    """``num_rows`` tokenized rows (``input_ids``, ``labels``): plans and pictures, see the module docstring.

    ``planned_fraction`` of the pictures follow the prompt's plan (``[prompt] [plan] <boi> [codes]``), the rest follow
    the bare prompt. In ``unrequested_fraction`` of the rows the scene (its plan and its picture) holds one object
    the prompt does not ask for, as web captions leave things out.
    """
    from .tokenizer import build_shapes_tokenizer

    tokenizer = build_shapes_tokenizer()
    boi = tokenizer.convert_tokens_to_ids("<boi>")
    rng = random.Random(seed)
    specs = training_specs()
    categories, weights = zip(*CATEGORY_MIX.items())
    rows = []
    for _ in range(num_rows):
        picture = rng.random() < picture_fraction
        category = rng.choices(categories, weights)[0] if picture else rng.choice(CATEGORIES)
        spec = rng.choice(specs[category])
        scene = random_scene_for(spec, rng)
        if rng.random() < unrequested_fraction:
            scene = with_unrequested_object(scene, rng)
        plan = write_plan(spec, scene)
        prompt_ids = tokenizer(spec.to_text())["input_ids"]
        if picture:
            context = prompt_ids
            if rng.random() < planned_fraction:
                context = prompt_ids + tokenizer(plan, add_special_tokens=False)["input_ids"]
            target = codes_to_token_ids(render(scene))
            ids = context + [boi] + target
            labels = [IGNORE_INDEX] * (len(context) + 1) + target
        else:
            target = tokenizer(plan, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
            ids, labels = prompt_ids + target, [IGNORE_INDEX] * len(prompt_ids) + target
        rows.append({"input_ids": ids, "labels": labels})
    return Dataset.from_list(rows)


def _pad(rows: list[dict]) -> dict[str, torch.Tensor]:
    length = max(len(r["input_ids"]) for r in rows)
    return {
        "input_ids": torch.tensor([r["input_ids"] + [0] * (length - len(r["input_ids"])) for r in rows]),
        "labels": torch.tensor([r["labels"] + [IGNORE_INDEX] * (length - len(r["labels"])) for r in rows]),
        "attention_mask": torch.tensor(
            [[1] * len(r["input_ids"]) + [0] * (length - len(r["input_ids"])) for r in rows]
        ),
    }


def train_base_model(
    output_dir: str,
    num_rows: int = 40_000,
    passes: int = 3,
    seed: int = 0,
    learning_rate: float = 2e-3,
    planned_fraction: float = 0.75,
    unrequested_fraction: float = 0.25,
    **trainer_kwargs,
):
    """Pretrain the base model from scratch on ``passes`` fresh ``base_corpus``es and save it (with its tokenizer)."""
    model, tokenizer = build_shapes_model(seed=seed)
    for index in range(passes):
        args = TrainingArguments(
            output_dir=str(Path(output_dir) / "_run"),
            per_device_train_batch_size=64,
            num_train_epochs=1,
            learning_rate=learning_rate if index == 0 else learning_rate / 2,
            lr_scheduler_type="cosine",
            warmup_steps=50 if index == 0 else 20,
            weight_decay=0.01,
            logging_steps=50,
            save_strategy="no",
            report_to="none",
            use_cpu=True,
            seed=seed + index,
            **trainer_kwargs,
        )
        corpus = base_corpus(
            num_rows, seed + index, planned_fraction=planned_fraction, unrequested_fraction=unrequested_fraction
        )
        Trainer(model=model, args=args, train_dataset=corpus, data_collator=_pad).train()
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return model, tokenizer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", default=str(Path(__file__).resolve().parent / "base_model"))
    parser.add_argument("--num-rows", type=int, default=40_000)
    parser.add_argument("--passes", type=int, default=3, help="Epochs, each over a fresh corpus (see above).")
    parser.add_argument("--learning-rate", type=float, default=2e-3, help="Of the first pass; later passes use half.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--planned-fraction", type=float, default=0.75, help="Share of pictures drawn after a plan.")
    parser.add_argument(
        "--unrequested-fraction",
        type=float,
        default=0.25,
        help="Share of rows whose scene holds an unrequested object.",
    )
    train_base_model(**vars(parser.parse_args(argv)))  # the options are named after its arguments


if __name__ == "__main__":
    main()
