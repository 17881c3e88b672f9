import random

import numpy as np
import pytest
from PIL import Image

from trl_unified.shapes import PALETTE, ShapesImageCodec, codes_to_grid, grid_to_codes, to_codes


@pytest.fixture
def codec():
    return ShapesImageCodec()


def test_codec_attributes(codec):
    assert codec.num_image_tokens == 64
    assert codec.codebook_size == 8
    assert PALETTE[0] == (0, 0, 0) and PALETTE[4] == (240, 220, 40) and PALETTE[7] == (245, 245, 245)


@pytest.mark.parametrize("seed", range(5))
def test_decode_then_encode_is_exact(codec, seed):
    rng = random.Random(seed)
    codes = [rng.randrange(8) for _ in range(64)]
    image = codec.decode(codes)
    assert image.size == (64, 64) and image.mode == "RGB"
    assert codec.encode(image) == codes
    assert codec.encode(np.asarray(image)) == codes


def test_decode_is_row_major_with_palette_colours(codec):
    codes = [0] * 64
    codes[1] = 1  # row 0, col 1
    codes[8 * 3 + 5] = 5  # row 3, col 5
    pixels = np.asarray(codec.decode(codes))
    assert (pixels[0:8, 8:16] == PALETTE[1]).all()
    assert (pixels[24:32, 40:48] == PALETTE[5]).all()
    assert (pixels[0:8, 0:8] == 0).all()
    assert (pixels[8:16, 8:16] == 0).all()


def test_noisy_image_encodes_to_nearest_palette(codec):
    rng = np.random.default_rng(0)
    codes = [int(c) for c in rng.integers(0, 8, size=64)]
    pixels = np.asarray(codec.decode(codes)).astype(np.float64)
    noisy = np.clip(pixels + rng.normal(0, 40, size=pixels.shape), 0, 255).astype(np.uint8)
    assert codec.encode(Image.fromarray(noisy)) == codes


@pytest.mark.parametrize(
    "rgb, code",
    [
        ((200, 60, 60), 1),
        ((250, 150, 30), 6),
        ((30, 30, 30), 0),
        ((235, 235, 200), 7),
        ((60, 100, 200), 3),
        ((150, 80, 190), 5),
        ((230, 210, 70), 4),
        ((70, 170, 90), 2),
    ],
)
def test_encode_uses_nearest_palette_colour_of_cell_mean(codec, rgb, code):
    pixels = np.zeros((64, 64, 3), dtype=np.uint8)
    pixels[8:16, 0:8] = rgb
    codes = codec.encode(pixels)
    assert codes[8] == code
    assert codes[:8] == [0] * 8 and codes[9:] == [0] * 55


def test_encode_averages_the_whole_cell(codec):
    pixels = np.zeros((64, 64, 3), dtype=np.uint8)
    pixels[0:8, 0:8] = PALETTE[3]
    pixels[0, 0] = PALETTE[7]  # one stray pixel does not change the cell
    pixels[0:8, 8:16] = (0, 0, 0)
    pixels[0:8, 8:12] = (250, 250, 250)  # half white, half black: the mean (125,125,125) is nearest to purple
    codes = codec.encode(pixels)
    assert codes[0] == 3
    mean = np.array([125.0, 125.0, 125.0])
    assert int(np.argmin(((np.asarray(PALETTE) - mean) ** 2).sum(axis=1))) == 5
    assert codes[1] == 5


def test_rgba_image_is_accepted(codec):
    codes = [i % 8 for i in range(64)]
    assert codec.encode(codec.decode(codes).convert("RGBA")) == codes


@pytest.mark.parametrize(
    "bad, message",
    [
        (Image.new("RGB", (32, 32)), "64x64"),
        (Image.new("RGB", (64, 65)), "64x64"),
        (np.zeros((64, 64), dtype=np.uint8), "shape"),
        (np.zeros((64, 64, 4), dtype=np.uint8), "shape"),
        ("not an image", "PIL image"),
    ],
)
def test_encode_rejects_bad_images(codec, bad, message):
    with pytest.raises(ValueError, match=message):
        codec.encode(bad)


@pytest.mark.parametrize(
    "bad, message",
    [
        ([0] * 63, "64 codes"),
        ([0] * 65, "64 codes"),
        ([0] * 63 + [8], "out of range"),
        ([-1] + [0] * 63, "out of range"),
        ([0.5] * 64, "integers"),
        ([[0] * 8] * 7, "64 codes"),
    ],
)
def test_decode_rejects_bad_codes(codec, bad, message):
    with pytest.raises(ValueError, match=message):
        codec.decode(bad)


def test_decode_accepts_8x8_grid(codec):
    grid = np.arange(64).reshape(8, 8) % 8
    assert codec.encode(codec.decode(grid)) == [int(c) for c in grid.reshape(-1)]


def test_to_codes_accepts_images_and_codes(codec):
    codes = [(i * 3) % 8 for i in range(64)]
    assert to_codes(codec.decode(codes)) == codes
    assert to_codes(np.asarray(codec.decode(codes))) == codes
    assert to_codes(np.asarray(codes).reshape(8, 8)) == codes
    assert to_codes(tuple(codes)) == codes


def test_text_grid_round_trip():
    text = """
    . r r . . . . .
    . r r . . . . .
    . . . . . . . .
    . . . . g . . .
    . . . . . . . .
    b b b . . . . y
    . . . . . . p .
    w . . . . o . .
    """
    codes = grid_to_codes(text)
    assert codes[1] == 1 and codes[8 * 3 + 4] == 2 and codes[8 * 5] == 3 and codes[8 * 5 + 7] == 4
    assert codes[8 * 6 + 6] == 5 and codes[8 * 7 + 5] == 6 and codes[8 * 7] == 7
    assert grid_to_codes(codes_to_grid(codes)) == codes
    with pytest.raises(ValueError, match="rows"):
        grid_to_codes("........\n" * 7)
    with pytest.raises(ValueError, match="letter"):
        grid_to_codes("x.......\n" + "........\n" * 7)
