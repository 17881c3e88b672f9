"""The `trl-unified` CLI: train from a local model dir and a JSONL dataset, options from a --config YAML."""

import json
import subprocess
import sys

import yaml
from peft import PeftModel

from tests.sample_rows import make_rows
from trl_unified.cli import main
from trl_unified.scripts.train import make_parser
from trl_unified.testing.causal_lm import tiny_causal_lm


def test_help_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "train" in out and "generate" in out and "demo" in out
    assert main(["bogus"]) == 2


def test_yaml_config_and_command_line_are_parsed(tmp_path):
    config = tmp_path / "rwr.yaml"
    config.write_text(
        yaml.safe_dump(
            {"reward_weighting": "softmax", "beta": 0.25, "image_loss_weight": 2.0, "output_dir": str(tmp_path)}
        )
    )
    script, training, model = make_parser().parse_args_and_config(
        args=["--config", str(config), "--dataset_name", "x.jsonl", "--model_name_or_path", "m", "--beta", "0.5"]
    )
    assert training.reward_weighting == "softmax" and training.image_loss_weight == 2.0
    assert training.beta == 0.5  # the command line wins over the file
    assert script.dataset_name == "x.jsonl" and model.model_name_or_path == "m"


def test_train_command_end_to_end_with_lora(tmp_path):
    model, tokenizer = tiny_causal_lm(seed=0)
    model.save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(json.dumps(row) for row in make_rows(8)))
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "trl_unified.cli",
        "train",
        "--model_name_or_path",
        str(tmp_path / "base"),
        "--dataset_name",
        str(data),
        "--output_dir",
        str(out),
        "--use_peft",
        "--lora_r",
        "4",
        "--max_steps",
        "2",
        "--per_device_train_batch_size",
        "4",
        "--report_to",
        "none",
        "--use_cpu",
        "--save_strategy",
        "no",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "adapter_model.safetensors").exists()
    card = (out / "README.md").read_text()
    assert "2601.04339" in card and f"dataset (not on the Hub): `{data}`" in card
    reloaded = PeftModel.from_pretrained(model, str(out))
    assert any("lora_" in name for name, _ in reloaded.named_parameters())
