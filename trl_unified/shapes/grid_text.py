"""A human-readable text form of 64 codes (one letter per cell), for hand-written test scenes and debugging.

Letters: `.` black, `r` red, `g` green, `b` blue, `y` yellow, `p` purple, `o` orange, `w` white.
Whitespace inside a row is ignored, so grids may be written spaced out (`. r r .`) or packed (`.rr.`).
"""

from __future__ import annotations

from .codec import check_codes
from .palette import GRID_SIZE

CODE_LETTERS = ".rgbypow"
"""Letter of each palette code (index = code)."""


def grid_to_codes(text: str) -> list[int]:
    """Parse 8 non-empty lines of 8 cell letters each into 64 row-major codes."""
    rows = ["".join(line.split()) for line in text.strip().splitlines() if line.strip()]
    if len(rows) != GRID_SIZE:
        raise ValueError(f"expected {GRID_SIZE} rows, got {len(rows)}")
    codes: list[int] = []
    for index, row in enumerate(rows):
        if len(row) != GRID_SIZE:
            raise ValueError(f"row {index} has {len(row)} cells, expected {GRID_SIZE}: {row!r}")
        for letter in row:
            if letter not in CODE_LETTERS:
                raise ValueError(f"unknown cell letter {letter!r} in row {index}; use one of {CODE_LETTERS!r}")
            codes.append(CODE_LETTERS.index(letter))
    return codes


def codes_to_grid(codes) -> str:
    """Render 64 codes as 8 lines of space-separated cell letters."""
    flat = check_codes(codes)
    rows = [flat[row * GRID_SIZE : (row + 1) * GRID_SIZE] for row in range(GRID_SIZE)]
    return "\n".join(" ".join(CODE_LETTERS[code] for code in row) for row in rows)
