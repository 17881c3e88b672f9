import random

import pytest

from trl_unified.shapes import (
    PLAN_WORDS,
    PlacedObject,
    generate_prompts,
    parse_plan,
    plan_for_prompt,
    plan_score,
    random_scene_for,
    render,
    verify,
    write_plan,
)


def test_plan_format_example():
    scene = [PlacedObject("red", "square", 2, 3), PlacedObject("blue", "dot", 5, 6)]
    text = write_plan("a red square and a blue dot", scene)
    assert text == "plan : red square at row 2 col 3 ; blue dot at row 5 col 6 ."
    assert parse_plan(text) == scene
    assert set(text.split()) <= set(PLAN_WORDS)


def test_write_plan_orders_entries_by_prompt():
    scene = [PlacedObject("blue", "dot", 5, 6), PlacedObject("red", "square", 2, 3)]
    assert write_plan("a red square left of a blue dot", scene).startswith("plan : red square")
    assert write_plan("a blue dot right of a red square", scene).startswith("plan : blue dot")


def test_plan_round_trip_and_score_for_generated_scenes():
    rng = random.Random(0)
    for spec in generate_prompts(150, seed=2):
        plan, scene = plan_for_prompt(spec, rng)
        assert parse_plan(plan) == scene
        assert set(plan.split()) <= set(PLAN_WORDS)
        assert plan_score(spec.to_text(), plan) == 1.0
        assert verify(spec, render(parse_plan(plan))).correct


def test_parse_plan_tolerates_spacing_but_not_other_text():
    assert parse_plan("plan: red dot at row 1 col 2.") == [PlacedObject("red", "dot", 1, 2)]
    assert parse_plan("  plan :\n red dot at row 1 col 2 ;green dot at row 4 col 4 . ") == [
        PlacedObject("red", "dot", 1, 2),
        PlacedObject("green", "dot", 4, 4),
    ]
    for bad in [
        "",
        "plan : .",
        "plan : red dot at row 1 col 2",
        "plan red dot at row 1 col 2 .",
        "plan : red dot at row 8 col 2 .",
        "plan : red dot at row 1 col 2 . and more",
        "plan : red circle at row 1 col 2 .",
        "plan : red dot at col 1 row 2 .",
        "plan : red dot at row 1 col 2 green dot at row 4 col 4 .",
        "plan : red dot at row 1 col 2 ; .",
        "i will draw a red dot",
        None,
    ]:
        assert parse_plan(bad) is None, bad


PROMPT = "a red square left of a blue dot"


@pytest.mark.parametrize(
    "plan, expected",
    [
        ("plan : red square at row 2 col 1 ; blue dot at row 2 col 6 .", 1.0),
        ("i would draw it", 0.0),
        # relation violated: (M + P) / (R + S + X) = (2 + 0) / (2 + 1)
        ("plan : red square at row 2 col 5 ; blue dot at row 2 col 1 .", 2 / 3),
        # missing the dot: relation cannot hold: 1 / 3
        ("plan : red square at row 2 col 1 .", 1 / 3),
        # wrong colour: red square matched, blue dot missing, green dot extra: 1 / (2 + 1 + 1)
        ("plan : red square at row 2 col 1 ; green dot at row 2 col 6 .", 1 / 4),
        # extra object: 3 / (2 + 1 + 1)
        ("plan : red square at row 2 col 1 ; blue dot at row 2 col 6 ; white dot at row 6 col 6 .", 3 / 4),
        # touching: content 1, but both entries touch: W / N = 0
        ("plan : red square at row 2 col 1 ; blue dot at row 4 col 3 .", 0.0),
        # out of bounds square at row 7: content 1, one of two well placed
        ("plan : red square at row 7 col 1 ; blue dot at row 2 col 6 .", 1 / 2),
    ],
)
def test_plan_score_partial_credit(plan, expected):
    assert plan_score(PROMPT, plan) == pytest.approx(expected)


def test_plan_score_counting_and_bounds():
    good = "plan : green vbar at row 0 col 0 ; green vbar at row 0 col 2 ; green vbar at row 5 col 7 ."
    assert plan_score("three green vbars", good) == 1.0
    assert plan_score("two green vbars", good) == pytest.approx(2 / 3)
    assert plan_score("four green vbars", good) == pytest.approx(3 / 4)
    overlap = "plan : green vbar at row 0 col 0 ; green vbar at row 1 col 0 ; green vbar at row 5 col 7 ."
    assert plan_score("three green vbars", overlap) == pytest.approx(1 / 3)
    assert plan_score("a green hbar", "plan : green hbar at row 3 col 6 .") == 0.0
    assert plan_score("a green hbar", "plan : green hbar at row 3 col 5 .") == 1.0


def test_scene_plan_is_checked_with_same_rules_as_image():
    rng = random.Random(3)
    scene = random_scene_for("a purple hbar below a white vbar", rng)
    plan = write_plan("a purple hbar below a white vbar", scene)
    assert plan_score("a purple hbar above a white vbar", plan) == pytest.approx(2 / 3)
    assert not verify("a purple hbar above a white vbar", render(scene)).correct
