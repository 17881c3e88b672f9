"""The loop from the command line on the shapes base model: evaluate (two modes) -> compare -> target."""

import json
import subprocess
import sys

from trl_unified.cli import main
from trl_unified.shapes.model import BASE_MODEL_DIR


def cli(*args):
    result = subprocess.run(
        [sys.executable, "-m", "trl_unified.cli", *args], check=False, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def test_help_lists_the_new_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "evaluate" in out and "compare" in out and "target" in out


def test_evaluate_compare_target(tmp_path):
    prompts = tmp_path / "eval.txt"
    prompts.write_text("a red square\ntwo blue dots\nthree green dots\na green hbar left of a white dot\n")
    out = cli(
        "evaluate",
        "--model_name_or_path",
        str(BASE_MODEL_DIR),
        "--prompts",
        str(prompts),
        "--categorize",
        "shapes",
        "--image_rewards",
        "shapes_image",
        "--text_rewards",
        "shapes_text",
        "--modes",
        "image_only",
        "unified",
        "--num_samples",
        "2",
        "--guidance_scale",
        "1",
        "--max_text_tokens",
        "48",
        "--output_dir",
        str(tmp_path / "evals"),
        "--name",
        "base",
        "--geneval_layout",
    )
    assert "base_unified: 8 samples" in out and "counting" in out
    unified = tmp_path / "evals" / "base_unified"
    rows = [json.loads(line) for line in (unified / "samples.jsonl").read_text().splitlines()]
    assert [r["category"] for r in rows[::2]] == ["single", "counting", "counting", "position"]
    assert (unified / "geneval" / "00003" / "samples" / "0001.png").exists()

    out = cli(
        "compare",
        "--evaluations",
        str(tmp_path / "evals" / "base_image_only"),
        str(unified),
        "--output_dir",
        str(tmp_path / "cmp"),
    )
    assert "| counting |" in out and "base_unified - base_image_only" in out
    assert {p.name for p in (tmp_path / "cmp").iterdir()} >= {
        "comparison.md",
        "comparison.json",
        "comparison.png",
        "report.html",
    }

    out = cli(
        "target",
        "--evaluation",
        str(unified),
        "--source",
        "shapes",
        "--pool_size",
        "30",
        "--output_dir",
        str(tmp_path / "round1"),
    )
    pool = [json.loads(line) for line in (tmp_path / "round1" / "pool.jsonl").read_text().splitlines()]
    assert len(pool) == 30 and not {p["prompt"] for p in pool} & set(prompts.read_text().splitlines())


def test_evaluate_loads_a_peft_adapter_merged(tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model

    from trl_unified.evaluation.evaluation_config import EvaluationConfig
    from trl_unified.scripts.evaluate import load_model
    from trl_unified.shapes.model import load_shapes_model

    base, _ = load_shapes_model()
    reference = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights=False))
    reference.save_pretrained(tmp_path / "adapter")
    merged = reference.merge_and_unload()
    model, processor = load_model(
        EvaluationConfig(model_name_or_path=str(BASE_MODEL_DIR), adapter_path=str(tmp_path / "adapter"))
    )
    weight = model.model.layers[0].self_attn.q_proj.weight
    assert type(model).__name__ == "LlamaForCausalLM" and not model.training
    assert torch.allclose(weight, merged.model.layers[0].self_attn.q_proj.weight, atol=1e-6)
    assert not torch.allclose(weight, load_shapes_model()[0].model.layers[0].self_attn.q_proj.weight)
    assert processor.convert_tokens_to_ids("<boi>") is not None


def test_evaluate_command_starts_a_wandb_run_and_logs_the_samples(tmp_path, monkeypatch):
    import types

    from trl_unified.scripts.evaluate import make_parser, run

    logged, started = [], []
    fake = types.SimpleNamespace(
        run=None,
        Image=lambda image: image.size,
        Table=lambda columns, data: (columns, data),
        log=lambda payload, step=None: logged.append(payload),
    )

    def init(**kwargs):
        started.append(kwargs)
        fake.run = object()

    fake.init = init
    monkeypatch.setitem(sys.modules, "wandb", fake)
    prompts = tmp_path / "eval.txt"
    prompts.write_text("counting\ttwo blue dots\n")
    (config,) = make_parser().parse_args_and_config(
        args=[
            "--model_name_or_path",
            str(BASE_MODEL_DIR),
            "--prompts",
            str(prompts),
            "--image_rewards",
            "shapes_image",
            "--num_samples",
            "2",
            "--guidance_scale",
            "1",
            "--output_dir",
            str(tmp_path / "evals"),
            "--report_to",
            "wandb",
        ]
    )
    run(config)
    assert started[0]["job_type"] == "evaluation" and started[0]["config"]["num_samples"] == 2
    ((name, (columns, data)),) = [(k, v) for payload in logged for k, v in payload.items()]
    assert name == "eval/base_model_unified" and len(data) == 2 and data[0][:2] == ["two blue dots", "counting"]
    assert columns[3] == "image" and data[0][3] == (64, 64)  # the picture went in as a wandb.Image
