"""`trl-unified demo --quick` runs end to end and writes every promised output."""

import json
import subprocess
import sys

import pytest
from huggingface_hub import ModelCard
from PIL import Image

from trl_unified.shapes.demo import eval_sample_list, read_prompts, targeted_pool, weakness_report
from trl_unified.shapes.evaluation import EvalResult
from trl_unified.shapes.prompts import CATEGORIES, is_held_out, parse_prompt


def test_weakness_report_and_targeted_pool_lean_on_failures():
    result = EvalResult("base", "staged", {"single": 1.0, "two_object": 0.8, "counting": 0.1, "color_attr": 0.9, "position": 0.0}, 0.0, 10)
    shares = weakness_report(result, min_share=0.05)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["position"] > shares["counting"] > shares["two_object"] > shares["single"] >= 0.04
    pool = targeted_pool(shares, 100, exclude=set(), seed=0)
    counts = {c: sum(parse_prompt(p).category == c for p in pool) for c in CATEGORIES}
    assert counts["position"] > counts["two_object"] > 0 and counts["single"] >= 1
    assert not any(is_held_out(p) for p in pool)


def test_eval_sample_list_gives_every_category_the_same_precision():
    prompts = ["a red square", "one blue dot"] + [f"{n} green dots" for n in ("two", "three", "four")]
    samples = eval_sample_list(prompts, per_category=6)
    assert samples == ["a red square"] * 3 + ["one blue dot"] * 3 + ["two green dots"] * 2 + ["three green dots"] * 2 + [
        "four green dots"
    ] * 2
    assert eval_sample_list(prompts, per_category=1) == prompts  # at least one sample per prompt, in order


def test_eval_prompts_file_errors_name_the_line(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("a red square\n\nthree purple blobs\n")
    with pytest.raises(ValueError, match=r"prompts.txt, line 2"):
        read_prompts(str(path))


def test_demo_quick_end_to_end(tmp_path):
    prompts = tmp_path / "eval.txt"
    prompts.write_text("a red square\ntwo blue dots\na green hbar left of a white dot\n")
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "trl_unified.cli", "demo", "--quick", "--output-dir", str(out), "--eval-prompts", str(prompts)]
    result = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "switch rate" in result.stdout and "base staged" in result.stdout
    for name in ("base_staged", "base_unified", "base_image_only", "round1_unified"):
        folder = out / "eval" / name
        rows = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
        assert [r["prompt"] for r in rows] == prompts.read_text().split("\n")[:3]
        for row in rows:
            assert set(row) == {"prompt", "category", "reasoning", "image", "switched", "correct"}
            image = Image.open(folder / row["image"])
            assert image.size == (64, 64)
        assert Image.open(folder / "grid.png").size[0] > 64
    assert Image.open(out / "accuracy.png").size[0] > 100
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["base"]) == {"staged", "unified", "image_only"} and len(summary["rounds"]) == 1
    assert (out / "round1" / "pool.txt").read_text().strip()
    assert (out / "model" / "config.json").exists()
    # the round's adapter card names the dataset that round generated (folder and run fingerprint)
    card = ModelCard.load(out / "round1" / "train" / "model" / "README.md")
    run = json.loads((out / "round1" / "generated" / "trl_unified_run.json").read_text())
    assert str(out / "round1" / "generated") in card.text and run["fingerprint"] in card.text
    assert "datasets" not in card.data.to_dict()  # not on the Hub: no link to a dataset that does not exist
    assert card.data.license == "apache-2.0"  # the shipped base model's licence (its card)
