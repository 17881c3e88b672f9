"""Reading objects back out of an image: 8-connected same-colour components, named by their exact cell pattern.

This is the only way the verifier sees an image, so it follows the spec literally: a component whose cells do not
form exactly one of the shape patterns is `unknown`, never "the closest shape".
"""

from __future__ import annotations

from dataclasses import dataclass

from .codec import to_codes
from .palette import BACKGROUND, CODE_NAMES, GRID_SIZE, shape_of_cells


@dataclass(frozen=True)
class ParsedObject:
    """A maximal 8-connected set of cells of one colour; `shape` is a shape name or `unknown`."""

    colour: str
    shape: str
    cells: tuple[tuple[int, int], ...]
    centroid: tuple[float, float]

    @property
    def key(self) -> tuple[str, str]:
        return (self.colour, self.shape)


def parse_image(image_or_codes) -> list[ParsedObject]:
    """Objects in an image (PIL / HxWx3 array) or in 64 codes (flat or 8x8), ordered by their first cell
    in row-major order."""
    codes = to_codes(image_or_codes)
    grid = [codes[row * GRID_SIZE : (row + 1) * GRID_SIZE] for row in range(GRID_SIZE)]
    seen: set[tuple[int, int]] = set()
    objects: list[ParsedObject] = []
    for row in range(GRID_SIZE):
        for col in range(GRID_SIZE):
            code = grid[row][col]
            if code == BACKGROUND or (row, col) in seen:
                continue
            component = _component(grid, row, col, seen)
            objects.append(
                ParsedObject(
                    colour=CODE_NAMES[code],
                    shape=shape_of_cells(component),
                    cells=tuple(sorted(component)),
                    centroid=(
                        sum(r for r, _ in component) / len(component),
                        sum(c for _, c in component) / len(component),
                    ),
                )
            )
    return objects


def _component(grid: list[list[int]], row: int, col: int, seen: set[tuple[int, int]]) -> list[tuple[int, int]]:
    """Flood-fill the 8-connected cells sharing the colour of (row, col), marking them seen."""
    code = grid[row][col]
    stack = [(row, col)]
    seen.add((row, col))
    cells = []
    while stack:
        r, c = stack.pop()
        cells.append((r, c))
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                nr, nc = r + dr, c + dc
                if 0 <= nr < GRID_SIZE and 0 <= nc < GRID_SIZE and (nr, nc) not in seen and grid[nr][nc] == code:
                    seen.add((nr, nc))
                    stack.append((nr, nc))
    return cells
