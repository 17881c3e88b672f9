"""Scenes: objects placed on the 8x8 cell grid, rendered to codes, and sampled to satisfy a prompt.

A scene is the ground truth a prompt can be drawn from; sampling one per prompt gives reference images (for
supervised warm-up or sanity checks) and the geometry rules here (bounds, touching, relations) are shared with
the plan checker so text plans and images are judged by the same rules.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from PIL import Image

from .codec import ShapesImageCodec
from .palette import BACKGROUND, COLOUR_TO_CODE, COLOURS, GRID_SIZE, NUM_CODES, SHAPE_SIZES, check_colour, shape_cells
from .prompts import RELATIONS, PromptSpec, as_spec


@dataclass(frozen=True)
class PlacedObject:
    """One object: colour, shape and the (row, col) of its top-left cell."""

    colour: str
    shape: str
    row: int
    col: int

    def __post_init__(self) -> None:
        check_colour(self.colour)
        if self.shape not in SHAPE_SIZES:
            raise ValueError(f"unknown shape {self.shape!r}; expected one of {tuple(SHAPE_SIZES)}")
        for name in ("row", "col"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an int, got {value!r}")

    @property
    def key(self) -> tuple[str, str]:
        return (self.colour, self.shape)

    @property
    def cells(self) -> frozenset[tuple[int, int]]:
        return shape_cells(self.shape, self.row, self.col)

    @property
    def centroid(self) -> tuple[float, float]:
        """Mean (row, col) of the object's cells, the position used by relations."""
        height, width = SHAPE_SIZES[self.shape]
        return (self.row + (height - 1) / 2, self.col + (width - 1) / 2)

    def in_bounds(self) -> bool:
        return all(0 <= r < GRID_SIZE and 0 <= c < GRID_SIZE for r, c in self.cells)


Scene = list[PlacedObject]


def objects_touch(first: PlacedObject, second: PlacedObject) -> bool:
    """True if the objects overlap or are 8-neighbours (sharing an edge or a corner).

    Every shape is a solid rectangle, so this is: the rectangles grown by one cell on each side intersect."""
    (h1, w1), (h2, w2) = SHAPE_SIZES[first.shape], SHAPE_SIZES[second.shape]
    rows_near = first.row <= second.row + h2 and second.row <= first.row + h1
    cols_near = first.col <= second.col + w2 and second.col <= first.col + w1
    return rows_near and cols_near


def relation_holds(relation: str, centroid_a: tuple[float, float], centroid_b: tuple[float, float]) -> bool:
    """Whether `A <relation> B` holds between centroids (row, col), strictly, as the spec defines it."""
    (row_a, col_a), (row_b, col_b) = centroid_a, centroid_b
    if relation == "left of":
        return col_a < col_b
    if relation == "right of":
        return col_a > col_b
    if relation == "above":
        return row_a < row_b
    if relation == "below":
        return row_a > row_b
    raise ValueError(f"unknown relation {relation!r}; expected one of {RELATIONS}")


def is_well_drawn(scene: Scene) -> bool:
    """Every object lies inside the grid and no two objects touch (diagonals included)."""
    return all(obj.in_bounds() for obj in scene) and not any(
        objects_touch(a, b) for i, a in enumerate(scene) for b in scene[i + 1 :]
    )


def render(scene: Scene) -> list[int]:
    """The 64 row-major codes of a scene. Raises ValueError for objects out of bounds or overlapping
    (touching is allowed here, so near-miss scenes can be rendered on purpose)."""
    codes = [BACKGROUND] * NUM_CODES
    taken: set[tuple[int, int]] = set()
    for obj in scene:
        if not obj.in_bounds():
            raise ValueError(f"{obj} does not fit inside the {GRID_SIZE}x{GRID_SIZE} grid")
        if taken & obj.cells:
            raise ValueError(f"{obj} overlaps another object")
        taken |= obj.cells
        for r, c in obj.cells:
            codes[r * GRID_SIZE + c] = COLOUR_TO_CODE[obj.colour]
    return codes


def render_image(scene: Scene) -> Image.Image:
    """The 64x64 RGB image of a scene."""
    return ShapesImageCodec().decode(render(scene))


def _positions(shape: str) -> list[tuple[int, int]]:
    height, width = SHAPE_SIZES[shape]
    return [(r, c) for r in range(GRID_SIZE - height + 1) for c in range(GRID_SIZE - width + 1)]


def random_scene_for(prompt: str | PromptSpec, rng: random.Random, max_tries: int = 200) -> Scene:
    """A well-drawn scene showing exactly what the prompt asks for (relation included), objects in prompt order.

    Objects are placed one by one at a uniformly chosen free spot; a dead end restarts the scene. The result
    depends only on the prompt and the state of `rng`.
    """
    spec = as_spec(prompt)
    instances = spec.instances()
    for _ in range(max_tries):
        scene: Scene = []
        for index, (colour, shape) in enumerate(instances):
            candidates = []
            for row, col in _positions(shape):
                obj = PlacedObject(colour, shape, row, col)
                if any(objects_touch(obj, other) for other in scene):
                    continue
                if spec.category == "position" and index == 1:
                    if not relation_holds(spec.relation, scene[0].centroid, obj.centroid):
                        continue
                candidates.append(obj)
            if not candidates:
                break
            scene.append(rng.choice(candidates))
        else:
            return scene
    raise ValueError(f"could not place {spec.to_text()!r} in {max_tries} tries")  # pragma: no cover


def with_unrequested_object(scene: Scene, rng: random.Random) -> Scene:
    """The scene plus one more object of a (colour, shape) it does not show yet, at a random free spot.

    Models a picture whose caption leaves something out. Returns the scene unchanged if nothing fits.
    """
    shown = {obj.key for obj in scene}
    kinds = [(colour, shape) for colour in COLOURS for shape in SHAPE_SIZES if (colour, shape) not in shown]
    colour, shape = rng.choice(kinds)
    spots = [PlacedObject(colour, shape, r, c) for r, c in _positions(shape)]
    spots = [obj for obj in spots if not any(objects_touch(obj, other) for other in scene)]
    return scene + [rng.choice(spots)] if spots else list(scene)
