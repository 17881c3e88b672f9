"""`trl-unified demo --quick` runs end to end and writes every promised output, with the library's evaluation and
targeting doing the work."""

import json
import subprocess
import sys

import pytest
import torch
from huggingface_hub import ModelCard
from PIL import Image

from trl_unified.shapes.demo import read_prompts


def test_eval_prompts_file_errors_name_the_line(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("a red square\n\nthree purple blobs\n")
    with pytest.raises(ValueError, match=r"prompts.txt, line 3"):
        read_prompts(str(path))


def test_demo_quick_end_to_end(tmp_path):
    prompts = tmp_path / "eval.txt"
    prompts.write_text("a red square\ntwo blue dots\na green hbar left of a white dot\n")
    out = tmp_path / "demo"
    cmd = [
        sys.executable,
        "-m",
        "trl_unified.cli",
        "demo",
        "--quick",
        "--output-dir",
        str(out),
        "--eval-prompts",
        str(prompts),
    ]
    result = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "switch rate" in result.stdout and "base staged" in result.stdout
    for name in ("base_staged", "base_unified", "base_image_only", "round1_unified"):
        folder = out / "eval" / name
        rows = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
        assert [r["prompt"] for r in rows] == prompts.read_text().split("\n")[:3]
        assert [r["category"] for r in rows] == ["single", "counting", "position"]
        for row in rows:
            assert row["correct"] == (row["rewards"]["image/shapes_image_reward"] == 1.0)
            assert Image.open(folder / row["image"]).size == (64, 64)
        assert Image.open(folder / "grid.png").size[1] > 128  # a picture and its caption
        assert (folder / "report.html").exists() and (folder / "results.json").exists()
    assert Image.open(out / "comparison.png").size[0] > 100
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["evaluations"][1] == "round1_unified"
    assert "report.html" in {p.name for p in out.iterdir()}
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["base"]) == {"staged", "unified", "image_only"} and len(summary["rounds"]) == 1
    pool = [json.loads(line) for line in (out / "round1" / "pool.jsonl").read_text().splitlines()]
    assert len(pool) == summary["config"]["pool_size"]
    assert not {p["prompt"] for p in pool} & set(prompts.read_text().splitlines())
    report = json.loads((out / "round1" / "weakness_report.json").read_text())
    assert sum(c["drawn"] for c in report["categories"]) == len(pool)
    assert (out / "model" / "config.json").exists()
    # the round's adapter card names the dataset that round generated (folder and run fingerprint)
    card = ModelCard.load(out / "round1" / "train" / "model" / "README.md")
    run = json.loads((out / "round1" / "generated" / "trl_unified_run.json").read_text())
    assert str(out / "round1" / "generated") in card.text and run["fingerprint"] in card.text
    assert "datasets" not in card.data.to_dict()  # not on the Hub: no link to a dataset that does not exist
    assert card.data.license == "apache-2.0"  # the shipped base model's licence (its card)


def test_each_round_card_names_the_model_it_trained_from(tmp_path):
    """Round 2 trains round 1's merged model, so its card names that model (saved in `round1/merged`, with a card
    holding the licence) as its base, not the shipped base model."""
    from huggingface_hub import ModelCard
    from transformers import AutoModelForCausalLM

    from trl_unified.shapes.demo import DemoConfig, run_demo
    from trl_unified.shapes.model import BASE_MODEL_DIR

    out = tmp_path / "demo"
    config = DemoConfig(
        output_dir=str(out), rounds=2, eval_prompts_per_category=1, eval_samples_per_category=1, pool_size=4,
        samples_per_prompt=2, epochs=1.0, batch_size=4,
    )  # fmt: skip
    run_demo(config)
    first, second = (ModelCard.load(out / f"round{i}" / "train" / "model" / "README.md") for i in (1, 2))
    assert "shapes/base_model" in first.text and "round1/merged" not in first.text
    assert f"`{out / 'round1' / 'merged'}`" in second.text and "shapes/base_model" not in second.text
    assert second.data.license == first.data.license == "apache-2.0"
    merged = AutoModelForCausalLM.from_pretrained(out / "round1" / "merged")
    base = AutoModelForCausalLM.from_pretrained(BASE_MODEL_DIR)
    assert not torch.equal(merged.lm_head.weight, base.lm_head.weight)  # round 1's training is in it
    assert not (out / "round2" / "merged").exists()  # the last round's model is `model/`
