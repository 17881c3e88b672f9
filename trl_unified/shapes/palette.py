"""The fixed vocabulary of the shapes world: grid geometry, palette, colour names and shape patterns.

Everything that draws, encodes or checks a shapes image reads these constants, so any two components
(and any independent checker following the spec) agree on what a cell, a colour and a shape are.
"""

from __future__ import annotations

GRID_SIZE = 8
"""Cells per side of the image grid."""

CELL_SIZE = 8
"""Pixels per side of one cell."""

IMAGE_SIZE = GRID_SIZE * CELL_SIZE
"""Pixels per side of a shapes image (64)."""

NUM_CODES = GRID_SIZE * GRID_SIZE
"""Image tokens per image (64), one per cell, row-major."""

PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),
    (230, 40, 40),
    (40, 190, 70),
    (50, 90, 230),
    (240, 220, 40),
    (160, 70, 210),
    (250, 140, 20),
    (245, 245, 245),
)
"""RGB value of each palette code; the index is the code."""

CODE_NAMES: tuple[str, ...] = ("black", "red", "green", "blue", "yellow", "purple", "orange", "white")
"""Name of each palette code."""

BACKGROUND = 0
"""Code of the background colour (black); never part of an object."""

COLOURS: tuple[str, ...] = CODE_NAMES[1:]
"""The seven object colours, in palette order."""

COLOUR_TO_CODE: dict[str, int] = {name: code for code, name in enumerate(CODE_NAMES)}

SHAPE_SIZES: dict[str, tuple[int, int]] = {
    "dot": (1, 1),
    "square": (2, 2),
    "hbar": (1, 3),
    "vbar": (3, 1),
}
"""(rows, cols) of the solid block each shape occupies."""

SHAPES: tuple[str, ...] = tuple(SHAPE_SIZES)

UNKNOWN_SHAPE = "unknown"
"""Shape name given to a parsed object whose cells match no pattern."""

SHAPE_PATTERNS: dict[str, frozenset[tuple[int, int]]] = {
    shape: frozenset((r, c) for r in range(h) for c in range(w)) for shape, (h, w) in SHAPE_SIZES.items()
}
"""Each shape's cells relative to its top-left cell."""


def check_colour(colour: str) -> str:
    """Return `colour` if it is an object colour, else raise ValueError (black is background, not a colour)."""
    if colour not in COLOURS:
        raise ValueError(f"unknown colour {colour!r}; expected one of {COLOURS}")
    return colour


def check_shape(shape: str) -> str:
    """Return `shape` if it is a drawable shape, else raise ValueError."""
    if shape not in SHAPE_PATTERNS:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")
    return shape


def shape_cells(shape: str, row: int, col: int) -> frozenset[tuple[int, int]]:
    """Cells covered by `shape` with its top-left cell at (row, col); may fall outside the grid."""
    return frozenset((row + dr, col + dc) for dr, dc in SHAPE_PATTERNS[check_shape(shape)])


def shape_of_cells(cells) -> str:
    """Name the shape whose pattern the cells form exactly (up to translation), else `unknown`."""
    cells = frozenset(cells)
    if not cells:
        return UNKNOWN_SHAPE
    top = min(r for r, _ in cells)
    left = min(c for _, c in cells)
    normalised = frozenset((r - top, c - left) for r, c in cells)
    for shape, pattern in SHAPE_PATTERNS.items():
        if normalised == pattern:
            return shape
    return UNKNOWN_SHAPE
