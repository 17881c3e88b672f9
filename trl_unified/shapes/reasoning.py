"""Reasoning plans: a short fixed-vocabulary text saying where each requested object will be drawn.

Example: `plan : red square at row 2 col 3 ; blue dot at row 5 col 6 .`
Grammar: `plan :` then one entry per object instance, `<colour> <shape> at row <r> col <c>`, entries separated by
`;` and closed by `.`; r and c are the digits 0-7 of the object's top-left cell. Words are separated by spaces
(the plan is tokenised like the shapes tokenizer does: runs of word characters, runs of punctuation).

A plan is checkable text: `plan_score` rewards the text half of a model on its own, by the same geometry rules
(bounds, no touching, centroid relations) that the image verdict applies to the drawing.
"""

from __future__ import annotations

import random
import re
from collections import Counter

from .palette import COLOURS, GRID_SIZE, SHAPES
from .prompts import PromptSpec, as_spec
from .scene import PlacedObject, Scene, objects_touch, random_scene_for, relation_holds
from .verify import match_objects

DIGITS: tuple[str, ...] = tuple(str(i) for i in range(GRID_SIZE))
PLAN_WORDS: tuple[str, ...] = ("plan", ":", "at", "row", "col", ";", ".", *COLOURS, *SHAPES, *DIGITS)
"""Every word a plan can contain."""

_TOKEN = re.compile(r"\w+|[^\w\s]+")


def write_plan(spec: str | PromptSpec, scene: Scene) -> str:
    """The plan text of a scene, entries ordered by the prompt's phrases (unrequested objects last)."""
    spec = as_spec(spec)
    order = {phrase.key: index for index, phrase in enumerate(spec.objects)}
    objects = sorted(scene, key=lambda obj: order.get(obj.key, len(order)))  # stable: keeps scene order within a key
    for obj in objects:
        if not (0 <= obj.row < GRID_SIZE and 0 <= obj.col < GRID_SIZE):
            raise ValueError(f"{obj} has a top-left cell outside the grid; a plan cannot express it")
    entries = [f"{obj.colour} {obj.shape} at row {obj.row} col {obj.col}" for obj in objects]
    return "plan : " + " ; ".join(entries) + " ."


def plan_for_prompt(prompt: str | PromptSpec, rng: random.Random) -> tuple[str, Scene]:
    """A correct plan for a prompt together with the scene it describes (e.g. for supervised warm-up data)."""
    spec = as_spec(prompt)
    scene = random_scene_for(spec, rng)
    return write_plan(spec, scene), scene


def parse_plan(text: str) -> Scene | None:
    """The scene a plan describes, or None if the text is not exactly one plan with at least one entry.

    Parsing is syntax only: a placement may still be out of bounds or touch another (see `plan_score`).
    """
    if not isinstance(text, str):
        return None
    tokens = _TOKEN.findall(text)
    if len(tokens) < 3 or tokens[:2] != ["plan", ":"] or tokens[-1] != ".":
        return None
    body = tokens[2:-1]
    entry_length = 7  # colour shape at row r col c
    if (len(body) + 1) % (entry_length + 1) != 0:
        return None
    scene: Scene = []
    for start in range(0, len(body), entry_length + 1):
        entry = body[start : start + entry_length]
        separator = body[start + entry_length : start + entry_length + 1]
        if separator not in ([], [";"]):
            return None
        colour, shape, at, row_word, row, col_word, col = entry
        if colour not in COLOURS or shape not in SHAPES or (at, row_word, col_word) != ("at", "row", "col"):
            return None
        if row not in DIGITS or col not in DIGITS:
            return None
        scene.append(PlacedObject(colour, shape, int(row), int(col)))
    return scene


def plan_score(prompt: str | PromptSpec, reasoning: str) -> float:
    """Score a plan against a prompt, in [0, 1]; 1.0 exactly when the plan is a correct drawing recipe.

    0.0 if the plan does not parse. Otherwise, with N planned entries, R requested instances, M matched
    instances (multiset intersection of (colour, shape)), X unrequested entries, W entries that are in bounds and
    touch/overlap no other entry, S = 1 for `position` prompts else 0, and P = 1 if S = 1 and the relation holds
    between the centroids of every (A, B) pair of planned entries with those (colour, shape)s (else 0):

        plan_score = (M + P) / (R + S + X) * W / N
    """
    spec = as_spec(prompt)
    scene = parse_plan(reasoning)
    if not scene:
        return 0.0
    requested = spec.requested()
    matched, _, extra = match_objects(requested, Counter(obj.key for obj in scene))
    slot = point = 0
    if spec.relation is not None:
        slot = 1
        found_a = [obj for obj in scene if obj.key == spec.objects[0].key]
        found_b = [obj for obj in scene if obj.key == spec.objects[1].key]
        if (
            found_a
            and found_b
            and all(relation_holds(spec.relation, a.centroid, b.centroid) for a in found_a for b in found_b)
        ):
            point = 1
    well_placed = sum(
        obj.in_bounds() and not any(objects_touch(obj, other) for j, other in enumerate(scene) if j != i)
        for i, obj in enumerate(scene)
    )
    content = (matched + point) / (sum(requested.values()) + slot + len(extra))
    return content * well_placed / len(scene)
