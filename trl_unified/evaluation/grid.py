"""A grid of sampled images for a quick look: the prompt under each picture, a green or red frame for the verdict."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

GOOD, BAD, BACKGROUND, TEXT = (40, 190, 70), (230, 40, 40), (30, 30, 30), (235, 235, 235)


def image_grid(
    images: Sequence[Image.Image | str | Path],
    captions: Sequence[str],
    verdicts: Sequence[bool | None],
    columns: int = 8,
    tile: int = 128,
    caption_lines: int = 3,
) -> Image.Image:
    """Up to ``columns**2`` images, each scaled to ``tile`` pixels (nearest neighbour: pixel art stays sharp),
    framed by its verdict (``None``: grey) and captioned with up to ``caption_lines`` wrapped lines."""
    count = min(len(images), columns * columns)
    try:
        font = ImageFont.load_default(size=12)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        font = ImageFont.load_default()
    line_height, char_width = 12, 6
    wrap = max(8, tile // char_width)
    pad, caption_height = 4, caption_lines * line_height + 4
    cell_w, cell_h = tile + 2 * pad, tile + 2 * pad + caption_height
    rows = max(1, -(-count // columns))
    grid = Image.new("RGB", (min(count, columns) * cell_w or cell_w, rows * cell_h), BACKGROUND)
    draw = ImageDraw.Draw(grid)
    for i in range(count):
        x, y = (i % columns) * cell_w, (i // columns) * cell_h
        colour = (120, 120, 120) if verdicts[i] is None else GOOD if verdicts[i] else BAD
        draw.rectangle([x, y, x + cell_w - 1, y + tile + 2 * pad - 1], fill=colour)
        image = images[i] if isinstance(images[i], Image.Image) else Image.open(images[i])
        resample = Image.NEAREST if image.width <= tile else Image.BILINEAR
        grid.paste(image.convert("RGB").resize((tile, tile), resample), (x + pad, y + pad))
        lines = textwrap.wrap(captions[i], wrap)[:caption_lines]
        if len(textwrap.wrap(captions[i], wrap)) > caption_lines:
            lines[-1] = lines[-1][: wrap - 3] + "..."
        for j, line in enumerate(lines):
            draw.text((x + pad, y + tile + 2 * pad + 2 + j * line_height), line, fill=TEXT, font=font)
    return grid


__all__ = ["image_grid"]
