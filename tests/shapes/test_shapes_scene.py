import random

import pytest

from trl_unified.shapes import (
    PlacedObject,
    ShapesImageCodec,
    generate_prompts,
    grid_to_codes,
    is_well_drawn,
    objects_touch,
    parse_image,
    random_scene_for,
    relation_holds,
    render,
    render_image,
    verify,
)

SCENE = [PlacedObject("red", "square", 1, 1), PlacedObject("blue", "vbar", 4, 6), PlacedObject("white", "hbar", 7, 0)]


def test_render_places_cells_row_major():
    scene = SCENE
    expected = grid_to_codes(
        """
        ........
        .rr.....
        .rr.....
        ........
        ......b.
        ......b.
        ......b.
        www.....
        """
    )
    assert render(scene) == expected
    assert ShapesImageCodec().encode(render_image(scene)) == expected


def test_parse_reports_shapes_and_centroids():
    scene = SCENE
    objects = parse_image(render(scene))
    assert [(o.colour, o.shape, o.centroid) for o in objects] == [
        ("red", "square", (1.5, 1.5)),
        ("blue", "vbar", (5.0, 6.0)),
        ("white", "hbar", (7.0, 1.0)),
    ]
    assert [o.centroid for o in objects] == [obj.centroid for obj in scene]


def test_render_rejects_out_of_bounds_and_overlap():
    with pytest.raises(ValueError, match="does not fit"):
        render([PlacedObject("red", "square", 7, 0)])
    with pytest.raises(ValueError, match="does not fit"):
        render([PlacedObject("red", "hbar", 0, 6)])
    with pytest.raises(ValueError, match="overlaps"):
        render([PlacedObject("red", "square", 0, 0), PlacedObject("blue", "dot", 1, 1)])
    with pytest.raises(ValueError):
        PlacedObject("black", "dot", 0, 0)


def test_touching_includes_diagonals():
    square = PlacedObject("red", "square", 2, 2)
    assert objects_touch(square, PlacedObject("blue", "dot", 4, 4))  # diagonal corner
    assert objects_touch(square, PlacedObject("blue", "dot", 2, 4))  # edge
    assert not objects_touch(square, PlacedObject("blue", "dot", 5, 5))
    assert not objects_touch(square, PlacedObject("blue", "vbar", 0, 5))
    assert not is_well_drawn([square, PlacedObject("blue", "dot", 4, 4)])
    assert is_well_drawn([square, PlacedObject("blue", "dot", 5, 2)])


def test_relation_holds_is_strict():
    assert relation_holds("left of", (0, 1), (0, 2)) and not relation_holds("left of", (0, 2), (5, 2))
    assert relation_holds("right of", (0, 3), (0, 2.5)) and not relation_holds("right of", (0, 2), (0, 2))
    assert relation_holds("above", (1, 0), (1.5, 0)) and not relation_holds("above", (1, 0), (1, 0))
    assert relation_holds("below", (4, 0), (1, 7)) and not relation_holds("below", (1, 0), (4, 0))
    with pytest.raises(ValueError):
        relation_holds("near", (0, 0), (1, 1))


def test_random_scenes_verify_as_correct():
    rng = random.Random(0)
    for spec in generate_prompts(250, seed=5):
        scene = random_scene_for(spec, rng)
        assert is_well_drawn(scene), (spec.to_text(), scene)
        assert len(scene) == sum(p.count for p in spec.objects)
        verdict = verify(spec.to_text(), render(scene))
        assert verdict.correct, (spec.to_text(), scene, verdict)


def test_random_scenes_verify_from_images_for_hardest_prompts():
    rng = random.Random(1)
    for text in [
        "four blue squares",
        "four red vbars",
        "four white hbars",
        "a red square below a blue square",
        "a red vbar right of a blue vbar",
        "one green hbar above a green dot",
    ]:
        for _ in range(10):
            scene = random_scene_for(text, rng)
            assert verify(text, render_image(scene)).correct


def test_random_scene_is_deterministic_and_varies():
    first = random_scene_for("three green dots", random.Random(42))
    assert first == random_scene_for("three green dots", random.Random(42))
    others = {tuple(random_scene_for("three green dots", random.Random(seed))) for seed in range(10)}
    assert len(others) > 5


def test_objects_touch_matches_the_cell_definition():
    from trl_unified.shapes import SHAPES

    for first in SHAPES:
        for second in SHAPES:
            for row in range(-4, 5):
                for col in range(-4, 5):
                    a, b = PlacedObject("red", first, 0, 0), PlacedObject("blue", second, row, col)
                    by_cells = any(abs(r1 - r2) <= 1 and abs(c1 - c2) <= 1 for r1, c1 in a.cells for r2, c2 in b.cells)
                    assert objects_touch(a, b) == objects_touch(b, a) == by_cells


def test_unrequested_object_is_new_well_placed_and_fails_the_verdict():
    from trl_unified.shapes.scene import is_well_drawn, with_unrequested_object

    rng = random.Random(0)
    for prompt in ("a red square", "four blue dots", "a green hbar left of a white dot"):
        scene = random_scene_for(prompt, rng)
        bigger = with_unrequested_object(scene, rng)
        assert bigger[: len(scene)] == scene and len(bigger) == len(scene) + 1
        assert bigger[-1].key not in {obj.key for obj in scene}
        assert is_well_drawn(bigger)
        assert verify(prompt, render(scene)).correct and not verify(prompt, render(bigger)).correct
