"""The demo repeats bit for bit with the same seed (LoRA included: the seed is set before the adapter is made)."""

import hashlib
import json
import subprocess
import sys


def run_quick_demo(out, prompts):
    cmd = [sys.executable, "-m", "trl_unified.cli", "demo", "--quick", "--output-dir", str(out), "--eval-prompts",
           str(prompts), "--seed", "3"]  # fmt: skip
    result = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads((out / "summary.json").read_text())
    files = sorted((out / "model").glob("*.safetensors"))
    weights = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    return summary, weights


def test_quick_demo_twice_gives_the_same_results_and_model(tmp_path):
    prompts = tmp_path / "eval.txt"
    prompts.write_text("a red square\ntwo blue dots\na green hbar left of a white dot\n")
    summary_a, weights_a = run_quick_demo(tmp_path / "a", prompts)
    summary_b, weights_b = run_quick_demo(tmp_path / "b", prompts)
    assert weights_a and weights_a == weights_b
    # every measured number (not the wall time or the paths)
    assert json.dumps(summary_a["rounds"], sort_keys=True) == json.dumps(summary_b["rounds"], sort_keys=True)
    assert json.dumps(summary_a["base"], sort_keys=True) == json.dumps(summary_b["base"], sort_keys=True)
