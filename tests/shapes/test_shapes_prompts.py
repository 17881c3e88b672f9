import re

import pytest

from trl_unified.shapes import (
    CATEGORIES,
    RELATIONS,
    ObjectPhrase,
    PromptSpec,
    all_prompt_specs,
    generate_prompts,
    is_held_out,
    make_train_eval_prompts,
    parse_prompt,
    split_prompts,
)
from trl_unified.shapes.prompts import PROMPT_WORDS


def test_to_text_examples_from_the_spec():
    assert PromptSpec("single", [ObjectPhrase(1, "red", "square")]).to_text() == "a red square"
    assert PromptSpec("counting", [ObjectPhrase(3, "green", "dot")]).to_text() == "three green dots"
    two = PromptSpec("two_object", [ObjectPhrase(1, "red", "square"), ObjectPhrase(1, "blue", "dot", "one")])
    assert two.to_text() == "a red square and one blue dot"
    position = PromptSpec("position", [ObjectPhrase(1, "red", "square"), ObjectPhrase(1, "blue", "dot")], "left of")
    assert position.to_text() == "a red square left of a blue dot"


@pytest.mark.parametrize(
    "text, category, counts, relation",
    [
        ("a red square", "single", [1], None),
        ("one white vbar", "single", [1], None),
        ("four yellow hbars", "counting", [4], None),
        ("two purple vbars", "counting", [2], None),
        ("a red square and a blue dot", "two_object", [1, 1], None),
        ("a red square and a red dot", "two_object", [1, 1], None),
        ("a red square and one blue square", "color_attr", [1, 1], None),
        ("a red square right of a blue dot", "position", [1, 1], "right of"),
        ("one red square below a red dot", "position", [1, 1], "below"),
    ],
)
def test_parse_prompt_categories(text, category, counts, relation):
    spec = parse_prompt(text)
    assert spec.category == category and [p.count for p in spec.objects] == counts and spec.relation == relation
    assert spec.to_text() == text


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("a red squares", "singular"),
        ("two red square", "plural"),
        ("a pink square", "colour"),
        ("a black square", "colour"),
        ("a red circle", "shape"),
        ("A red square", "count word"),
        ("an orange dot", "count word"),
        ("five red dots", "count word"),
        ("a red square  and a blue dot", "single spaces"),
        ("a red square and a red square", "same object"),
        ("a red square left of a red square", "same object"),
        ("two red squares and a blue dot", "count 1"),
        ("a red square next to a blue dot", "'and' or a relation"),
        ("a red square left a blue dot", "'of'"),
        ("a red square and", "ends inside"),
        ("a red square and a blue dot please", "unexpected words"),
        ("a red", "ends inside"),
    ],
)
def test_parse_prompt_rejects_text_outside_grammar(text, message):
    with pytest.raises(ValueError, match=message):
        parse_prompt(text)


def test_spec_constructor_validates():
    with pytest.raises(ValueError):
        PromptSpec("single", [ObjectPhrase(2, "red", "dot")])
    with pytest.raises(ValueError):
        PromptSpec("two_object", [ObjectPhrase(1, "red", "dot"), ObjectPhrase(1, "blue", "dot")])
    with pytest.raises(ValueError):
        PromptSpec("color_attr", [ObjectPhrase(1, "red", "dot"), ObjectPhrase(1, "blue", "square")])
    with pytest.raises(ValueError):
        PromptSpec("position", [ObjectPhrase(1, "red", "dot"), ObjectPhrase(1, "blue", "dot")], None)
    with pytest.raises(ValueError):
        ObjectPhrase(5, "red", "dot")
    assert ObjectPhrase(3, "red", "dot", "one").article == "a"  # only counts of 1 have two spellings


def test_grammar_space_sizes_and_round_trip():
    sizes = {category: len(all_prompt_specs(category)) for category in CATEGORIES}
    # 7 colours x 4 shapes = 28 objects; a/one per phrase.
    assert sizes == {
        "single": 28 * 2,
        "counting": 28 * 3,
        "two_object": 28 * 21 * 4,
        "color_attr": 28 * 6 * 4,
        "position": 28 * 27 * 4 * 4,
    }
    for category in CATEGORIES:
        texts = [spec.to_text() for spec in all_prompt_specs(category)]
        assert len(set(texts)) == len(texts)
        for spec, text in zip(all_prompt_specs(category), texts):
            assert parse_prompt(text) == spec


def _check_prompt_rules(spec: PromptSpec):
    keys = [phrase.key for phrase in spec.objects]
    assert len(set(keys)) == len(keys)
    if spec.category == "single":
        assert len(keys) == 1 and spec.objects[0].count == 1
    elif spec.category == "counting":
        assert len(keys) == 1 and 2 <= spec.objects[0].count <= 4
    elif spec.category == "two_object":
        assert spec.objects[0].shape != spec.objects[1].shape
    elif spec.category == "color_attr":
        assert spec.objects[0].shape == spec.objects[1].shape
        assert spec.objects[0].colour != spec.objects[1].colour
    else:
        assert spec.relation in RELATIONS
    if spec.category != "counting":
        assert all(phrase.count == 1 for phrase in spec.objects)


def test_generated_prompts_cover_the_grammar():
    specs = generate_prompts(60, seed=0)
    texts = [spec.to_text() for spec in specs]
    assert len(set(texts)) == 60
    assert {spec.category for spec in specs} == set(CATEGORIES)
    assert {p.count for spec in specs for p in spec.objects} == {1, 2, 3, 4}
    assert {spec.relation for spec in specs if spec.relation} == set(RELATIONS)
    words = [set(text.split()) for text in texts]
    assert any("a" in w for w in words) and any("one" in w for w in words)
    for spec in specs:
        _check_prompt_rules(spec)
        assert parse_prompt(spec.to_text()) == spec
    many = generate_prompts(400, seed=3, as_text=True)
    used = {word for text in many for word in text.split()}
    assert {"dots", "squares", "hbars", "vbars", "and", "left", "right", "of", "above", "below"} <= used
    assert used == set(PROMPT_WORDS)
    assert all(re.fullmatch(r"[a-z]+( [a-z]+)*", text) for text in many)


def test_generate_is_deterministic_and_seeded():
    assert generate_prompts(30, seed=1, as_text=True) == generate_prompts(30, seed=1, as_text=True)
    assert generate_prompts(30, seed=1, as_text=True) != generate_prompts(30, seed=2, as_text=True)


def test_generate_by_category_and_limits():
    specs = generate_prompts(56, categories=["single"])
    assert {s.category for s in specs} == {"single"} and len({s.to_text() for s in specs}) == 56
    with pytest.raises(ValueError, match="only 56"):
        generate_prompts(57, categories=["single"])
    with pytest.raises(ValueError, match="only 56"):
        generate_prompts(57, categories=["single", "single"])
    assert {s.category for s in generate_prompts(10, categories="counting")} == {"counting"}
    with pytest.raises(ValueError, match="unknown category"):
        generate_prompts(3, categories=["colour"])


def test_generate_exclude_skips_rewordings():
    excluded = ["a red square", "a red square left of a blue dot", "a green dot and a yellow hbar"]
    specs = generate_prompts(len(all_prompt_specs("single")) - 2, categories=["single"], exclude=excluded)
    assert not {"a red square", "one red square"} & {s.to_text() for s in specs}
    positions = generate_prompts(2000, categories=["position", "two_object"], exclude=excluded, as_text=True)
    for reworded in (
        "one red square left of a blue dot",
        "a blue dot right of a red square",
        "one yellow hbar and a green dot",
    ):
        assert reworded not in positions
    assert "a blue dot left of a red square" in generate_prompts(
        len(all_prompt_specs("position")) - 8, categories=["position"], exclude=excluded, as_text=True
    )


def test_split_is_deterministic_disjoint_and_keeps_rewordings_together():
    texts = generate_prompts(500, seed=0, as_text=True)
    train, held_out = split_prompts(texts, eval_fraction=0.2, seed=0)
    assert set(train).isdisjoint(held_out) and sorted(train + held_out) == sorted(texts)
    assert 0.1 < len(held_out) / len(texts) < 0.3
    assert split_prompts(texts, 0.2, 0) == (train, held_out)
    assert split_prompts(texts, 0.2, 1) != (train, held_out)
    train_keys = {parse_prompt(t).request_key() for t in train}
    assert train_keys.isdisjoint(parse_prompt(t).request_key() for t in held_out)
    for seed in range(20):
        assert is_held_out("a red square left of a blue dot", 0.5, seed) == is_held_out(
            "one blue dot right of a red square", 0.5, seed
        )


def test_make_train_eval_prompts_disjoint():
    train, held_out = make_train_eval_prompts(200, 50, seed=0)
    assert len(train) == 200 and len(held_out) == 50
    train_keys = {parse_prompt(t).request_key() for t in train}
    assert train_keys.isdisjoint(parse_prompt(t).request_key() for t in held_out)
    assert make_train_eval_prompts(200, 50, seed=0) == (train, held_out)
