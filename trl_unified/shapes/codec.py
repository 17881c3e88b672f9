"""The shapes image tokenizer: a 64x64 RGB image <-> 64 palette codes (one per 8x8-pixel cell, row-major).

Encoding takes the nearest palette colour (Euclidean RGB) to each cell's mean colour, so a slightly noisy or
resampled image still maps to the codes it was meant to show, and decoding then encoding is exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from .palette import CELL_SIZE, GRID_SIZE, IMAGE_SIZE, NUM_CODES, PALETTE

_PALETTE_ARRAY = np.asarray(PALETTE, dtype=np.float64)


def check_codes(codes) -> list[int]:
    """Validate 64 codes (flat, or an 8x8 array) and return a flat list of ints; ValueError says what is wrong."""
    try:
        array = np.asarray(codes)
    except Exception as error:  # e.g. ragged nested lists
        raise ValueError(f"codes must be a sequence of {NUM_CODES} integers: {error}") from error
    if array.shape == (GRID_SIZE, GRID_SIZE):
        array = array.reshape(-1)
    if array.ndim != 1 or array.shape[0] != NUM_CODES:
        raise ValueError(
            f"expected {NUM_CODES} codes (flat, or {GRID_SIZE}x{GRID_SIZE}), got shape {tuple(array.shape)}"
        )
    whole_floats = np.issubdtype(array.dtype, np.floating) and bool(np.all(array == np.round(array)))
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer) or whole_floats):
        raise ValueError(f"codes must be integers, got dtype {array.dtype}")
    array = array.astype(np.int64)
    bad = np.flatnonzero((array < 0) | (array >= len(PALETTE)))
    if bad.size:
        raise ValueError(f"code {int(array[bad[0]])} at position {int(bad[0])} is out of range [0, {len(PALETTE) - 1}]")
    return [int(code) for code in array]


def _image_array(image) -> np.ndarray:
    """Return the image as a float (64, 64, 3) RGB array, or raise ValueError naming what is wrong."""
    if isinstance(image, Image.Image):
        if image.size != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"image must be {IMAGE_SIZE}x{IMAGE_SIZE} pixels, got {image.size[0]}x{image.size[1]}")
        return np.asarray(image.convert("RGB"), dtype=np.float64)
    if isinstance(image, np.ndarray):
        if image.shape != (IMAGE_SIZE, IMAGE_SIZE, 3):
            raise ValueError(
                f"image array must have shape ({IMAGE_SIZE}, {IMAGE_SIZE}, 3) with 0-255 RGB values, got {image.shape}"
            )
        if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
            raise ValueError(f"image array must be numeric, got dtype {image.dtype}")
        return image.astype(np.float64)
    raise ValueError(f"expected a PIL image or a numpy array, got {type(image).__name__}")


class ShapesImageCodec:
    """Image tokenizer of the shapes world: `encode` image -> 64 codes, `decode` codes -> 64x64 RGB image."""

    num_image_tokens = NUM_CODES
    codebook_size = len(PALETTE)
    image_size = IMAGE_SIZE

    def encode(self, image: Image.Image | np.ndarray) -> list[int]:
        """Codes of a 64x64 RGB image (PIL, or array of 0-255 values): nearest palette colour to each cell mean."""
        pixels = _image_array(image)
        cells = pixels.reshape(GRID_SIZE, CELL_SIZE, GRID_SIZE, CELL_SIZE, 3).mean(axis=(1, 3)).reshape(-1, 3)
        distances = ((cells[:, None, :] - _PALETTE_ARRAY[None, :, :]) ** 2).sum(axis=-1)
        return [int(code) for code in distances.argmin(axis=1)]

    def decode(self, codes: Sequence[int] | np.ndarray) -> Image.Image:
        """A 64x64 RGB image with every cell filled by its code's palette colour."""
        grid = np.asarray(check_codes(codes), dtype=np.int64).reshape(GRID_SIZE, GRID_SIZE)
        rgb = np.asarray(PALETTE, dtype=np.uint8)[grid]
        pixels = np.repeat(np.repeat(rgb, CELL_SIZE, axis=0), CELL_SIZE, axis=1)
        return Image.fromarray(pixels)


def to_codes(image_or_codes) -> list[int]:
    """Accept an image (PIL or HxWx3 array) or 64 codes (flat or 8x8) and return validated flat codes."""
    if isinstance(image_or_codes, Image.Image):
        return ShapesImageCodec().encode(image_or_codes)
    if isinstance(image_or_codes, np.ndarray) and image_or_codes.ndim == 3:
        return ShapesImageCodec().encode(image_or_codes)
    return check_codes(image_or_codes)
