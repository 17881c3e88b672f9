"""The shapes world: a tiny, exactly checkable text-to-image world (specified in docs/shapes_world.md).

Prompts name coloured dots, squares and bars with counts and positions; images are 8x8 grids of palette cells
(64 image tokens); a verifier says whether an image shows exactly what the prompt asks. Everything needed to
self-generate, reward, train and evaluate on it lives here.
"""

from __future__ import annotations

import importlib
import os

from .codec import ShapesImageCodec, check_codes, to_codes
from .grid_text import codes_to_grid, grid_to_codes
from .palette import (
    BACKGROUND,
    CODE_NAMES,
    COLOURS,
    GRID_SIZE,
    IMAGE_SIZE,
    NUM_CODES,
    PALETTE,
    SHAPE_PATTERNS,
    SHAPES,
    shape_cells,
    shape_of_cells,
)
from .parse import ParsedObject, parse_image
from .prompts import (
    CATEGORIES,
    RELATIONS,
    ObjectPhrase,
    PromptSpec,
    all_prompt_specs,
    generate_prompts,
    is_held_out,
    make_train_eval_prompts,
    parse_prompt,
    split_prompts,
)
from .reasoning import PLAN_WORDS, parse_plan, plan_for_prompt, plan_score, write_plan
from .rewards import SHAPES_REWARDS, shapes_image_partial_reward, shapes_image_reward, shapes_text_reward
from .scene import (
    PlacedObject,
    Scene,
    is_well_drawn,
    objects_touch,
    random_scene_for,
    relation_holds,
    render,
    render_image,
)
from .verify import Verdict, verify
from .vocab import IMAGE_TOKEN_OFFSET, IMAGE_TOKENS, SPECIAL_TOKENS, VOCAB, VOCAB_SIZE

_LAZY = {  # need transformers; imported on first use so the verifier and rewards stay light
    "build_shapes_tokenizer": "tokenizer",
    "codes_to_token_ids": "tokenizer",
    "image_token_ids": "tokenizer",
    "token_ids_to_codes": "tokenizer",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def shapes_metric_path() -> str:
    """Path of the shapes-accuracy `evaluate` module: `evaluate.load(shapes_metric_path())` works offline."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "metric", "shapes_accuracy.py")


__all__ = [
    "BACKGROUND",
    "CATEGORIES",
    "CODE_NAMES",
    "COLOURS",
    "GRID_SIZE",
    "IMAGE_SIZE",
    "IMAGE_TOKENS",
    "IMAGE_TOKEN_OFFSET",
    "NUM_CODES",
    "PALETTE",
    "PLAN_WORDS",
    "RELATIONS",
    "SHAPES",
    "SHAPES_REWARDS",
    "SHAPE_PATTERNS",
    "SPECIAL_TOKENS",
    "VOCAB",
    "VOCAB_SIZE",
    "ObjectPhrase",
    "ParsedObject",
    "PlacedObject",
    "PromptSpec",
    "Scene",
    "ShapesImageCodec",
    "Verdict",
    "all_prompt_specs",
    "build_shapes_tokenizer",
    "check_codes",
    "codes_to_grid",
    "codes_to_token_ids",
    "generate_prompts",
    "grid_to_codes",
    "image_token_ids",
    "is_held_out",
    "is_well_drawn",
    "make_train_eval_prompts",
    "objects_touch",
    "parse_image",
    "parse_plan",
    "parse_prompt",
    "plan_for_prompt",
    "plan_score",
    "random_scene_for",
    "relation_holds",
    "render",
    "render_image",
    "shape_cells",
    "shape_of_cells",
    "shapes_image_partial_reward",
    "shapes_image_reward",
    "shapes_metric_path",
    "shapes_text_reward",
    "split_prompts",
    "to_codes",
    "token_ids_to_codes",
    "verify",
    "write_plan",
]
