"""Weakness report -> targeted pool, from every prompt source; never an evaluation prompt."""

import json
import random
import subprocess
import sys

import pytest
import torch

from tests.evaluation.conftest import make_result
from trl_unified.shapes.prompt_source import ShapesPromptSource
from trl_unified.shapes.prompts import CATEGORIES, is_held_out, parse_prompt
from trl_unified.targeting import (
    DatasetPromptSource,
    GrammarPromptSource,
    LMPromptSource,
    build_targeted_pool,
    target,
    weakness_report,
)

GRAMMAR = """
slots:
  object: [cat, dog, {singular: bus, plural: buses}]
  colour: [red, green]
  count: [two, three]
  relation: [left of, right of]
  text: [OPEN]
categories:
  counting: ["a photo of {count} {object:plural}"]
  position: ["a photo of a {object} {relation} a {object#2}"]
  colors: ["a photo of a {colour} {object}"]
  text: ['a sign that says "{text}"']
"""


def shapes_eval():
    verdicts = {
        "single": [1] * 10,
        "two_object": [1] * 8 + [0] * 2,
        "counting": [1] + [0] * 9,
        "color_attr": [1] * 9 + [0],
        "position": [0] * 10,
    }
    return make_result("base", verdicts)


def test_shares_follow_failure_rates_with_a_floor_and_counts_sum_to_the_pool():
    report = weakness_report(shapes_eval(), min_share=0.05)
    shares = report.shares
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["position"] > shares["counting"] > shares["two_object"] > shares["single"] >= 0.04
    position = report.categories["position"]
    assert position.failure_rate == 1.0 and position.low < 1.0 == position.high and position.num_samples == 10
    assert report.weakest(2) == ["position", "counting"]
    counts = report.allocate(101)
    assert sum(counts.values()) == 101 and counts["single"] >= 1
    # a category asked for but never evaluated counts as failing everywhere
    report = weakness_report(make_result("x", {"single": [1, 1]}), 0.1, ["single", "position"])
    assert report.categories["position"].failure_rate == 1 and report.categories["position"].num_samples == 0
    with pytest.raises(ValueError, match="min_share"):
        weakness_report(shapes_eval(), min_share=0.3)


def test_shapes_pool_leans_on_failures_and_never_draws_evaluation_or_held_out_prompts():
    report = weakness_report(shapes_eval(), 0.05)
    exclude = {s for c in CATEGORIES for s in ShapesPromptSource().draw(c, 20, random.Random(1), set())}
    pool = build_targeted_pool(report, ShapesPromptSource(), 100, exclude=exclude, seed=0)
    counts = {c: sum(p["category"] == c for p in pool) for c in CATEGORIES}
    assert len(pool) == 100 and counts["position"] > counts["two_object"] > 0 and counts["single"] >= 1
    assert all(parse_prompt(p["prompt"]).category == p["category"] for p in pool)
    assert not any(is_held_out(p["prompt"]) for p in pool) and not {p["prompt"] for p in pool} & exclude
    assert {c: t.drawn for c, t in report.categories.items()} == counts
    assert build_targeted_pool(report, ShapesPromptSource(), 100, exclude=exclude, seed=0) == pool  # seeded


def test_dataset_source_excludes_evaluation_prompts_and_says_when_a_category_is_empty(tmp_path):
    evaluation = make_result("base", {"a": [0, 0, 1], "b": [1, 1, 0]})
    rows = [{"prompt": f"a prompt {i}", "category": "a"} for i in range(6)]  # 0-2 are the evaluation's own
    rows += [{"prompt": f"b new {i}", "category": "b"} for i in range(3)]
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    pool, report = target(evaluation, DatasetPromptSource(str(path)), 10, min_share=0.1, output_dir=tmp_path / "out")
    assert not {p["prompt"] for p in pool} & {r["prompt"] for r in evaluation.rows}
    a = report.categories["a"]
    assert a.count == a.drawn == 7 and a.unique == 3  # only 3 new `a` prompts: repeated, and the report says so
    assert (tmp_path / "out" / "pool.jsonl").read_text().count("\n") == 10
    md = (tmp_path / "out" / "weakness_report.md").read_text()
    assert "| a | 66.7% |" in md and "| 7 | 3 |" in md
    with pytest.raises(ValueError, match="no prompt of category 'a' outside the evaluation set"):
        target(evaluation, DatasetPromptSource(rows[:3] + rows[6:]), 10)


def test_yaml_grammar_source(tmp_path):
    path = tmp_path / "grammar.yaml"
    path.write_text(GRAMMAR)
    source = GrammarPromptSource.from_yaml(path)
    rng = random.Random(0)
    counting = source.draw("counting", 6, rng, {"a photo of two cats"})
    assert set(counting) == {
        "a photo of three cats",
        "a photo of two dogs",
        "a photo of three dogs",
        "a photo of two buses",
        "a photo of three buses",
    }  # 5 new ones, then a repeat
    assert len(counting) == 6
    for prompt in source.draw("position", 8, rng, set()):
        words = prompt.split()
        assert words[4] != words[-1]  # {object} and {object#2} differ
    assert source.draw("colors", 1, rng, set())[0].split()[-1] in ("cat", "dog", "bus")
    assert source.draw("text", 1, rng, set()) == ['a sign that says "OPEN"']
    with pytest.raises(ValueError, match="no prompt of category 'text' outside"):
        source.draw("text", 1, rng, {'a sign that says "OPEN"'})
    path.write_text(GRAMMAR.replace("{count} {object:plural}", "{count} {animal}"))
    with pytest.raises(ValueError, match="grammar.yaml: .*unknown slot 'animal'"):
        GrammarPromptSource.from_yaml(path)


class ScriptedLM(torch.nn.Module):
    """A text model that continues every context with the next of a list of lines (a stand-in for a real LM)."""

    def __init__(self, tokenizer, lines):
        super().__init__()
        self.tokenizer, self.lines, self.anchor = tokenizer, list(lines), torch.nn.Parameter(torch.zeros(1))

    def generate(self, input_ids, attention_mask=None, **kwargs):
        texts = [" " + self.lines.pop(0) + "\n- x" for _ in range(len(input_ids))]
        new = self.tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt")["input_ids"]
        return torch.cat([input_ids, new], dim=1)


def test_lm_source_deduplicates_against_the_evaluation_and_itself():
    from trl_unified.testing.causal_lm import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    lines = ["a red dot", "A Red Dot", "blue square", "a green dot", "blue square", "a red dot", "red red", "x"]
    source = LMPromptSource(
        ScriptedLM(tokenizer, lines),
        tokenizer,
        {"single": ["blue square", "a green dot"]},
        batch_size=4,
        max_rounds=2,
        validate=lambda p: p != "x",
    )
    drawn = source.draw("single", 5, random.Random(0), exclude={"red red"})
    assert drawn == ["a red dot"]  # the rest: a case variant, examples, the evaluation prompt, repeats, rejected
    context = source.context("single", random.Random(0))
    assert "'single'" in context and "- blue square\n" in context and context.endswith("-")


def test_lm_source_with_a_real_causal_lm_runs_generate():
    from trl_unified.testing.causal_lm import tiny_causal_lm

    model, tokenizer = tiny_causal_lm(seed=0)
    source = LMPromptSource(
        model, tokenizer, {"single": ["a red dot", "a blue dot"]}, batch_size=3, max_rounds=1, max_new_tokens=5
    )
    drawn = source.draw("single", 3, random.Random(0), exclude={"a green dot"})
    assert len(drawn) <= 3 and len({d.lower() for d in drawn}) == len(drawn)
    assert not {d.lower() for d in drawn} & {"a green dot", "a red dot", "a blue dot"}


def test_target_cli_writes_the_pool_and_report(tmp_path):
    from PIL import Image

    from trl_unified.evaluation.evaluate import write_evaluation

    evaluation = shapes_eval()
    write_evaluation(
        evaluation, [Image.new("RGB", (8, 8))] * evaluation.num_samples, tmp_path / "eval", html_report=False
    )
    cmd = [
        sys.executable,
        "-m",
        "trl_unified.cli",
        "target",
        "--evaluation",
        str(tmp_path / "eval"),
        "--source",
        "shapes",
        "--pool_size",
        "40",
        "--output_dir",
        str(tmp_path / "round1"),
    ]
    result = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| position | 100.0% |" in result.stdout
    pool = [json.loads(line) for line in (tmp_path / "round1" / "pool.jsonl").read_text().splitlines()]
    assert len(pool) == 40 and {p["category"] for p in pool} == set(CATEGORIES)


def test_the_example_geneval_grammar_draws_every_category():
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "targeting" / "geneval_grammar.yaml"
    source = GrammarPromptSource.from_yaml(path)
    assert {"single_object", "two_object", "counting", "colors", "position", "color_attr"} <= set(source.categories)
    rng = random.Random(0)
    for category in source.categories:
        drawn = source.draw(category, 5, rng, {"a photo of a cat"})
        assert len(set(drawn)) == 5 and "a photo of a cat" not in drawn
    assert all(not p.endswith(("bus", "knife")) for p in source.draw("counting", 20, rng, set()))
