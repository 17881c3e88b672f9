"""Every script in examples/scripts runs end to end on tiny checkpoints (via `--model_name_or_path`), so an example can
never rot: the whole self-generate -> score -> RWR loop for Janus and Emu3 (pushing the dataset and the adapter to a
local Hub), SFT of image generation on an image-caption folder, and a 2-process DeepSpeed launch with a shipped config.
"""

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from datasets import Dataset, Image, load_from_disk
from peft import PeftModel

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SCRIPTS = EXAMPLES / "scripts"

# What makes a production run tiny; the rest comes from the shipped YAML config.
TINY_TRAINING = [
    "--max_steps",
    "2",
    "--per_device_train_batch_size",
    "2",
    "--gradient_accumulation_steps",
    "1",
    "--gradient_checkpointing",
    "false",
    "--dtype",
    "float32",
    "--use_cpu",
    "true",
    "--save_strategy",
    "no",
    "--logging_steps",
    "1",
    "--disable_tqdm",
    "true",
    "--report_to",
    "none",
]
# A tiny random model writes the same few tokens for every sample of a prompt, so the text reward is constant within
# each group: keep those groups (weight 1) instead of the library's default of no weight for a constant group.
TINY_REWARDS = ("--keep_constant_groups", "true")


def run_script(name: str, argv: list[str], monkeypatch) -> None:
    """Run a script as `python examples/scripts/<name> ...` does, in this process (imports are already warm)."""
    monkeypatch.setattr(sys, "argv", [str(SCRIPTS / name), *argv])
    runpy.run_path(str(SCRIPTS / name), run_name="__main__")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Tiny Janus and Emu3 checkpoints, a tiny Llava VQAScore judge and a prompts file, saved once."""
    from trl_unified.testing.emu3 import tiny_emu3
    from trl_unified.testing.janus import tiny_janus
    from trl_unified.testing.judges import save_tiny_llava

    root = tmp_path_factory.mktemp("checkpoints")
    for name, build in (("janus", tiny_janus), ("emu3", tiny_emu3)):
        model, processor = build(seed=0)
        model.save_pretrained(root / name)
        processor.save_pretrained(root / name)
    save_tiny_llava(root / "judge")
    (root / "prompts.txt").write_text("a red circle\na blue square left of a green triangle\nthree red dots\n")
    return root


@pytest.mark.parametrize(
    "name, distributed_type, zero",
    [
        ("single_gpu.yaml", "NO", None),
        ("multi_gpu.yaml", "MULTI_GPU", None),
        ("deepspeed_zero2.yaml", "DEEPSPEED", {"zero_stage": 2, "offload_param_device": "none"}),
        ("deepspeed_zero3.yaml", "DEEPSPEED", {"zero_stage": 3, "zero3_init_flag": True}),
        ("deepspeed_zero3_offload.yaml", "DEEPSPEED", {"zero_stage": 3, "offload_param_device": "cpu"}),
    ],
)
def test_launch_configs_load_in_accelerate_and_have_a_launch_line(name, distributed_type, zero):
    from accelerate.commands.config.config_args import ClusterConfig

    config = ClusterConfig.from_yaml_file(str(EXAMPLES / "accelerate_configs" / name))
    assert config.distributed_type.value == distributed_type
    for key, value in (zero or {}).items():
        assert config.deepspeed_config[key] == value
    assert f"accelerate launch --config_file examples/accelerate_configs/{name}" in (EXAMPLES / "README.md").read_text()


def lora_state(model):
    return {k.replace(".default", ""): v.detach() for k, v in model.named_parameters() if "lora_" in k}


@pytest.mark.parametrize(
    "family, config", [("janus", "janus_pro_1b.yaml"), ("emu3", "emu3_gen.yaml")], ids=["janus", "emu3"]
)
def test_rwr_self_generated_loop_pushes_dataset_and_adapter(
    family, config, checkpoints, tmp_path, local_hub, monkeypatch
):
    from transformers import AutoModelForImageTextToText

    output_dir = tmp_path / "run"
    argv = [
        "--config",
        str(EXAMPLES / "configs" / config),
        "--model_name_or_path",
        str(checkpoints / family),
        "--prompts",
        str(checkpoints / "prompts.txt"),
        "--num_samples",
        "2",
        "--max_text_tokens",
        "4",
        "--image_rewards",
        f"vqascore:{checkpoints / 'judge'}",
        "--generation_batch_size",
        "8",
        "--generation_kwargs",
        '{"shard_size": 2, "progress": false}',
        "--output_dir",
        str(output_dir),
        "--push_to_hub",
        "--hub_model_id",
        f"test-user/{family}-rwr",
        "--lora_r",
        "4",
        "--lora_alpha",
        "8",
        *TINY_TRAINING,
        *TINY_REWARDS,
    ]
    run_script("rwr_self_generated.py", argv, monkeypatch)

    # The scored samples: 3 prompts x K=2, each with a VQAScore and the script's text reward, kept on disk.
    samples = load_from_disk(str(tmp_path / "run-samples"))
    assert len(samples) == 6 and sorted(set(samples["sample_index"])) == [0, 1]
    assert all(0.0 <= r <= 1.0 for r in samples["image/vqa_score"])
    assert all(0.0 <= r <= 1.0 for r in samples["text/plan_names_prompt"])
    assert len(set(samples["image/vqa_score"])) > 1  # the judge looked at the images
    dataset_files = local_hub.files("test-user/" + f"{family}-rwr-samples", repo_type="dataset")
    assert "README.md" in dataset_files and any(name.endswith(".parquet") for name in dataset_files)

    # The adapter: trained (LoRA weights moved from their zero init), saved, pushed with its card, and reloadable.
    files = local_hub.files(f"test-user/{family}-rwr")
    assert {"adapter_model.safetensors", "adapter_config.json", "README.md"} <= set(files)
    assert f"test-user/{family}-rwr-samples" in files["README.md"].decode()
    base = AutoModelForImageTextToText.from_pretrained(str(checkpoints / family))
    reloaded = PeftModel.from_pretrained(base, f"test-user/{family}-rwr")
    lora_b = [v for k, v in lora_state(reloaded).items() if "lora_B" in k]
    assert lora_b and any(v.abs().max() > 0 for v in lora_b)
    base = AutoModelForImageTextToText.from_pretrained(str(checkpoints / family))
    local = PeftModel.from_pretrained(base, str(output_dir))
    pushed, saved = lora_state(reloaded), lora_state(local)
    for key in saved:
        torch.testing.assert_close(pushed[key], saved[key])


def caption_folder(path: Path, n: int = 4) -> Path:
    """An image-caption dataset as users have them: a folder with a Parquet file of `image` and `text` columns."""
    from trl_unified.testing.judges import random_images

    path.mkdir()
    captions = ["a red circle", "two blue squares", "a green triangle above a dot", "three red dots"]
    rows = {"image": random_images(n, seed=1), "text": captions[:n]}
    Dataset.from_dict(rows).cast_column("image", Image()).to_parquet(str(path / "train.parquet"))
    return path


def test_sft_image_generation_encodes_images_and_trains_on_their_codes(checkpoints, tmp_path, monkeypatch):
    output_dir = tmp_path / "sft"
    argv = [
        "--config",
        str(EXAMPLES / "configs" / "sft_janus_pro_1b.yaml"),
        "--model_name_or_path",
        str(checkpoints / "janus"),
        "--dataset_name",
        str(caption_folder(tmp_path / "data")),
        "--output_dir",
        str(output_dir),
        "--lora_r",
        "4",
        "--lora_alpha",
        "8",
        "--learning_rate",
        "1e-2",
        *TINY_TRAINING,
        "--save_strategy",
        "steps",
        "--save_steps",
        "2",
    ]
    run_script("sft_image_generation.py", argv, monkeypatch)

    logs = json.loads((output_dir / "checkpoint-2" / "trainer_state.json").read_text())["log_history"]
    image_losses = [entry["loss/image"] for entry in logs if "loss/image" in entry]
    assert len(image_losses) == 2 and all(loss > 0 for loss in image_losses)  # the codes of the images were learned
    assert all(entry.get("weights/image_mean", 1.0) == 1.0 for entry in logs)  # plain SFT: every weight is 1
    from transformers import AutoModelForImageTextToText

    base = AutoModelForImageTextToText.from_pretrained(str(checkpoints / "janus"))
    adapter = PeftModel.from_pretrained(base, str(output_dir))
    assert any(v.abs().max() > 0 for k, v in lora_state(adapter).items() if "lora_B" in k)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_two_processes(accelerate_config: str, script: str, argv: list[str]) -> None:
    """`accelerate launch --config_file examples/accelerate_configs/<config> --num_processes 2 <script> ...` on CPU:
    `--use_cpu true` in the training options (ZeRO on CPU runs over gloo), one thread per process."""
    config = EXAMPLES / "accelerate_configs" / accelerate_config
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(config),
        "--num_processes",
        "2",
        "--main_process_port",
        str(free_port()),
        "--mixed_precision",
        "no",
        str(SCRIPTS / script),
        *argv,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]


def assert_two_deepspeed_ranks(output_dir: Path, stage: int = 2) -> None:
    """Two DeepSpeed ranks really trained: one optimizer partition each at the config's ZeRO stage."""
    step = output_dir / "checkpoint-2" / "global_step2"
    partitions = sorted(path.name for path in step.glob("*zero_pp_rank_*_optim_states.pt"))
    assert len(partitions) == 2 and {"zero_pp_rank_0", "zero_pp_rank_1"} == {
        n.split("_mp_")[0][-14:] for n in partitions
    }
    state = torch.load(step / partitions[1], map_location="cpu", weights_only=False)
    assert int(state["optimizer_state_dict"]["zero_stage"]) == stage
    if stage == 2:
        assert set(state["optimizer_state_dict"]["partition_count"]) == {2}


def test_two_process_deepspeed_zero2_sft_launch(tmp_path):
    """SFT of the shapes base model (the generic causal-LM family) on captioned shapes images, 2 ZeRO-2 processes."""
    import random

    from trl_unified.shapes import generate_prompts, random_scene_for, render_image

    assert (
        yaml.safe_load((EXAMPLES / "accelerate_configs" / "deepspeed_zero2.yaml").read_text())["deepspeed_config"][
            "zero_stage"
        ]
        == 2
    )
    data = tmp_path / "data"
    data.mkdir()
    prompts, rng = generate_prompts(4, seed=0, as_text=True), random.Random(0)
    rows = {"image": [render_image(random_scene_for(p, rng)) for p in prompts], "text": prompts}
    Dataset.from_dict(rows).cast_column("image", Image()).to_parquet(str(data / "train.parquet"))
    output_dir = tmp_path / "out"
    launch_two_processes(
        "deepspeed_zero2.yaml",
        "sft_image_generation.py",
        [
            "--model_name_or_path",
            str(ROOT / "trl_unified" / "shapes" / "base_model"),
            "--dataset_name",
            str(data),
            "--output_dir",
            str(output_dir),
            "--max_length",
            "128",
            "--per_device_train_batch_size",
            "1",
            *TINY_TRAINING,
            "--save_strategy",
            "steps",
            "--save_steps",
            "2",
        ],
    )
    assert_two_deepspeed_ranks(output_dir)
    logs = json.loads((output_dir / "checkpoint-2" / "trainer_state.json").read_text())["log_history"]
    assert len([entry for entry in logs if "loss/image" in entry]) == 2
    assert (output_dir / "model.safetensors").exists()


@pytest.mark.parametrize("stage", [2, 3])
def test_two_process_deepspeed_rwr_loop_launch(stage, checkpoints, tmp_path):
    """The whole loop on a tiny Janus with 2 ZeRO-2 or ZeRO-3 processes (the shipped configs; ZeRO-3 loads the model
    partitioned, `zero3_init_flag`): they share the prompts' shards, then train LoRA."""
    output_dir = tmp_path / "run"
    launch_two_processes(
        f"deepspeed_zero{stage}.yaml",
        "rwr_self_generated.py",
        [
            "--config",
            str(EXAMPLES / "configs" / "janus_pro_1b.yaml"),
            "--model_name_or_path",
            str(checkpoints / "janus"),
            "--prompts",
            str(checkpoints / "prompts.txt"),
            "--num_samples",
            "2",
            "--max_text_tokens",
            "4",
            "--image_rewards",
            f"vqascore:{checkpoints / 'judge'}",
            "--generation_kwargs",
            '{"shard_size": 1, "progress": false}',
            "--output_dir",
            str(output_dir),
            "--lora_r",
            "4",
            "--lora_alpha",
            "8",
            *TINY_TRAINING,
            *TINY_REWARDS,
            "--save_strategy",
            "steps",
            "--save_steps",
            "2",
        ],
    )
    samples = load_from_disk(str(tmp_path / "run-samples"))
    assert len(samples) == 6 and len(list((tmp_path / "run-samples" / "shards").glob("*.parquet"))) == 3
    assert_two_deepspeed_ranks(output_dir, stage)
    assert (output_dir / "adapter_model.safetensors").exists()


def test_estimate_memory_counts_the_model_and_applies_deepspeeds_formulas(checkpoints, monkeypatch, capsys):
    from transformers import AutoModelForImageTextToText

    argv = ["--model_name_or_path", str(checkpoints / "janus"), "--num_gpus", "1", "4"]
    run_script("estimate_memory.py", argv, monkeypatch)
    out = capsys.readouterr().out
    model = AutoModelForImageTextToText.from_pretrained(str(checkpoints / "janus"))
    n = sum({id(p): p.numel() for p in model.parameters()}.values())
    assert f"{n / 1e9:.2f}B parameters" in out
    assert {line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| deepspeed")} == {
        "deepspeed_zero2",
        "deepspeed_zero3",
        "deepspeed_zero3_offload",
    }

    script = runpy.run_path(str(SCRIPTS / "estimate_memory.py"))
    assert script["count_parameters"](str(checkpoints / "janus"), 4)["total"] == n
    billion, gib = 10**9, 2**30
    table = script["estimates"]({"total": 7 * billion, "largest_layer": billion // 2, "lora": 0}, num_gpus=8)
    # Full fine-tuning: DDP 16 bytes/parameter; ZeRO-2 16-bit weights everywhere + 18 bytes/parameter sharded;
    # ZeRO-3 shards those too and gathers the largest layer; with offload only that layer stays on the GPU.
    assert table["single_gpu / multi_gpu (DDP)"][0] == pytest.approx(16 * 7 * billion / gib)
    assert table["deepspeed_zero2"][0] == pytest.approx((2 + 18 / 8) * 7 * billion / gib)
    assert table["deepspeed_zero3"][0] == pytest.approx((18 / 8 * 7 * billion + 2 * billion) / gib)
    assert table["deepspeed_zero3_offload"][0] == pytest.approx(2 * billion / gib)
    # LoRA with no adapter parameters: the frozen bfloat16 base, whole (DDP, ZeRO-2) or sharded (ZeRO-3).
    assert table["deepspeed_zero2"][1] == pytest.approx(2 * 7 * billion / gib)
    assert table["deepspeed_zero3"][1] == pytest.approx((2 * billion + 2 * 7 * billion / 8) / gib)


def published_configs(root: Path) -> dict[str, Path]:
    """Configs with the published sizes of the checkpoints in examples/README.md's memory table (no download)."""
    from transformers import Emu3Config, JanusConfig

    def janus(hidden, layers, intermediate, heads):
        text = {
            "model_type": "llama",
            "hidden_size": hidden,
            "num_hidden_layers": layers,
            "intermediate_size": intermediate,
            "num_attention_heads": heads,
            "num_key_value_heads": heads,
            "head_dim": 128,
            "vocab_size": 102400,
            "max_position_embeddings": 16384,
            "tie_word_embeddings": False,
        }
        vq = {"projection_dim": hidden, "image_token_embed_dim": hidden}
        return JanusConfig(
            text_config=text, vision_config={"projection_dim": hidden}, vq_config=vq, tie_word_embeddings=False
        )

    configs = {
        "Janus-Pro-1B": janus(2048, 24, 5632, 16),
        "Janus-Pro-7B": janus(4096, 30, 11008, 32),
        "Emu3-Gen": Emu3Config(vocabulary_map={"<|extra_200|>": 151846}),  # the defaults are Emu3-8B's
    }
    for name, config in configs.items():
        config.save_pretrained(root / name)
    return {name: root / name for name in configs}


def test_readme_memory_table_is_what_estimate_memory_prints(tmp_path, monkeypatch, capsys):
    readme = (EXAMPLES / "README.md").read_text()
    for name, path in published_configs(tmp_path).items():
        run_script("estimate_memory.py", ["--model_name_or_path", str(path), "--num_gpus", "1", "8"], monkeypatch)
        out = capsys.readouterr().out
        billions, lora = out.split(": ")[1].split("B parameters")[0], out.split("trainable")[0].split(": ")[-1]
        assert f"| {name} ({billions}B; LoRA {lora.strip()}) |" in readme
        for line in out.splitlines()[3:]:
            config, one, eight = (cell.strip() for cell in line.strip("|").split("|"))
            row = f"| {config} | {one.removesuffix(' GiB')} | {eight.removesuffix(' GiB')} |"
            assert row in readme, row


def test_study_on_your_own_model_runs_every_arm_on_a_tiny_janus(checkpoints, tmp_path, monkeypatch):
    """examples/ablations/study_own_model.py: the study's arms and tables on a Janus checkpoint, a VQAScore judge, a
    categorised evaluation set and a training-prompt set (no shapes world involved)."""
    rows = [("single", "a red circle"), ("single", "a green square"), ("counting", "two blue dots"),
            ("counting", "three red dots")]  # fmt: skip
    eval_set, source = tmp_path / "eval.jsonl", tmp_path / "train.jsonl"
    eval_set.write_text("".join(json.dumps({"category": c, "prompt": p}) + "\n" for c, p in rows))
    train = [("single", f"a {c} {s}") for c in ("red", "blue", "pink") for s in ("star", "moon")]
    train += [("counting", f"{n} {c} stars") for n in ("two", "four") for c in ("red", "green", "blue")]
    source.write_text("".join(json.dumps({"category": c, "prompt": p}) + "\n" for c, p in train))
    out = tmp_path / "study"
    argv = [
        "--model_name_or_path", str(checkpoints / "janus"), "--eval_set", str(eval_set), "--source", str(source),
        "--image_rewards", f"vqascore:{checkpoints / 'judge'}", "--metric", "image/vqa_score", "--threshold", "0.5",
        "--training_kwargs", '{"keep_constant_groups": true}', "--quick", "--seeds", "0", "--arms", "sft",
        "broad_prompts", "--max_text_tokens", "6", "--guidance_scale", "2", "--output_dir", str(out),
    ]  # fmt: skip
    path = EXAMPLES / "ablations" / "study_own_model.py"
    monkeypatch.setattr(sys, "argv", [str(path), *argv])
    runpy.run_path(str(path), run_name="__main__")
    summary = json.loads((out / "study.json").read_text())
    assert summary["world"] == str(checkpoints / "janus") and summary["categories"] == ["single", "counting"]
    assert set(summary["evaluations"]) == {
        "base_staged", "base_unified", "base_image_only", "rwr_staged", "rwr_unified", "rwr_image_only",
        "sft_unified", "broad_prompts_unified",
    }  # fmt: skip
    samples = [json.loads(line) for line in (out / "seed0/eval/rwr_unified/samples.jsonl").read_text().splitlines()]
    assert {r["category"] for r in samples} == {"single", "counting"}
    assert len({r["rewards"]["image/vqa_score"] for r in samples}) > 1  # the judge looked at the images
    pool = [json.loads(line) for line in (out / "seed0/pools/broad/pool.jsonl").read_text().splitlines()]
    assert {p["prompt"] for p in pool} <= {p for _, p in train}
    assert (out / "study.md").read_text().count("| sft_unified |") == 1
