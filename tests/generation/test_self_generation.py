"""Self-generation in process: the trainer's format, scores, seeds, statistics and card, prompt sources, resume and
refusal of changed settings, the CLI parser, and the push to a local Hub (the real kill / torchrun runs are in
``test_self_generation_processes.py``)."""

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml
from datasets import Dataset
from datasets import Image as ImageFeature
from huggingface_hub import DatasetCard

from trl_unified.data.collator import DataCollatorForInterleavedSequences
from trl_unified.data.loading import load_any_dataset
from trl_unified.generation.prompts import load_prompts, prepare_prompts
from trl_unified.generation.run_state import RUN_FILE, GenerationConfigMismatch
from trl_unified.generation.sampler import generate_samples
from trl_unified.generation.seeds import prompt_seed
from trl_unified.generation.self_generation import regenerate_sample, self_generate
from trl_unified.generation.self_generation_config import SelfGenerationConfig
from trl_unified.generation.shards import shard_path
from trl_unified.generation.statistics import generation_statistics
from trl_unified.models.registry import get_adapter
from trl_unified.shapes import ShapesImageCodec, generate_prompts, shapes_image_partial_reward, shapes_text_reward
from trl_unified.testing.causal_lm import tiny_causal_lm

CODEC = ShapesImageCodec()


@pytest.fixture(scope="module")
def tiny():
    model, tokenizer = tiny_causal_lm(seed=0, image_codec="shapes", num_image_tokens=64)
    return model.eval(), tokenizer


def shapes_rows(n, seed=0):
    specs = generate_prompts(n, seed=seed)
    return [
        {"prompt": spec.to_text(), "prompt_id": f"shape-{i}", "category": spec.category} for i, spec in enumerate(specs)
    ]


def make_config(tmp_path, name="out", **overrides):
    settings = dict(
        output_dir=str(tmp_path / name), num_samples=2, shard_size=2, max_text_tokens=6, seed=1, progress=False
    )
    return SelfGenerationConfig(**{**settings, **overrides})


def as_rows(dataset):
    """Rows with the image as PNG bytes and NaN as a string (NaN != NaN), for exact comparisons."""
    rows = dataset.cast_column("image", ImageFeature(decode=False)).to_list()
    return [{k: "nan" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()} for row in rows]


CALLS = []


def counting_image_reward(prompts, reasoning, images, **columns):
    """shapes partial credit, recording which prompts it scored (to see which shards were generated)."""
    CALLS.extend(prompts)
    return shapes_image_partial_reward(prompts, reasoning, images)


def dot_hating_text_reward(prompts, reasoning, images, **columns):
    """Fails (raises) on every prompt that mentions a dot; 0.5 elsewhere. Also checks the carried column arrives."""
    assert "category" in columns and len(columns["category"]) == len(prompts)
    if any("dot" in p for p in prompts):
        raise RuntimeError("no dots")
    return [0.5] * len(prompts)


# ----- format, scores, seeds ------------------------------------------------------------------------------------------
def test_dataset_is_in_trainer_format_with_scores_seeds_and_failures(tiny, tmp_path):
    model, tokenizer = tiny
    rows = shapes_rows(5)
    config = make_config(tmp_path, text_reward_weights=[1.0, 3.0], image_reward_weights=[2.0])
    dataset = self_generate(
        model, tokenizer, rows, config, [shapes_text_reward, dot_hating_text_reward], [shapes_image_partial_reward]
    )
    expected_columns = [
        "prompt", "prompt_id", "sample_index", "reasoning", "image", "image_tokens", "prompt_ids", "reasoning_ids",
        "text/shapes_text_reward", "text/dot_hating_text_reward", "image/shapes_image_partial_reward",
        "text_reward", "image_reward", "reward_errors", "reward_failed", "mode", "switched", "forced_switch", "seed",
        "category",
    ]  # fmt: skip
    assert dataset.column_names == expected_columns
    assert len(dataset) == 10
    assert isinstance(dataset.features["image"], ImageFeature)
    # ordered by prompt then sample, every (prompt_id, sample_index) exactly once, extra columns carried through
    keys = list(zip(dataset["prompt_id"], dataset["sample_index"]))
    assert keys == [(row["prompt_id"], k) for row in rows for k in range(2)]
    assert dataset["category"] == [row["category"] for row in rows for _ in range(2)]

    failed_prompts = {row["prompt"] for row in rows if "dot" in row["prompt"]}
    assert failed_prompts and len(failed_prompts) < len(rows)
    for row in dataset:
        # the image column is the PNG of the codes, and the rewards are those of that image
        assert CODEC.encode(row["image"]) == row["image_tokens"]
        partial = shapes_image_partial_reward([row["prompt"]], None, [CODEC.decode(row["image_tokens"])])[0]
        assert row["image/shapes_image_partial_reward"] == pytest.approx(partial)
        assert row["image_reward"] == pytest.approx(2.0 * partial)
        assert row["seed"] == prompt_seed(1, row["prompt_id"])
        if row["prompt"] in failed_prompts:
            assert row["reward_failed"] and math.isnan(row["text_reward"])
            assert math.isnan(row["text/dot_hating_text_reward"])
            assert row["reward_errors"] and "no dots" in row["reward_errors"][0]
        else:
            assert not row["reward_failed"] and row["reward_errors"] == []
            assert row["text_reward"] == pytest.approx(row["text/shapes_text_reward"] + 3.0 * 0.5)
        assert row["mode"] == "unified" and row["switched"] != row["forced_switch"]

    # the statistics and the card say the same
    stats = generation_statistics(dataset)
    n_failed = sum(dataset["reward_failed"])
    assert stats["num_prompts"] == 5 and stats["num_samples"] == 10
    assert stats["num_failed_samples"] == n_failed == stats["num_failed_reward_evaluations"] > 0
    assert stats["rewards"]["text/dot_hating_text_reward"]["num_failed"] == n_failed
    assert stats["switch_rate"] == pytest.approx(sum(dataset["switched"]) / 10)
    values = dataset["image_reward"]
    mean = sum(values) / len(values)
    assert stats["rewards"]["image_reward"]["mean"] == pytest.approx(mean)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / 10)
    assert stats["rewards"]["image_reward"]["std"] == pytest.approx(std)
    out = Path(config.output_dir)
    card = DatasetCard.load(out / "README.md")
    meta = card.data.to_dict()["trl_unified"]
    assert meta["statistics"]["num_failed_reward_evaluations"] == n_failed
    assert meta["statistics"]["rewards"]["image_reward"]["mean"] == pytest.approx(mean)
    assert meta["sampler"]["guidance_scale"] == config.guidance_scale and meta["sampler"]["max_text_tokens"] == 6
    assert [r["name"] for r in meta["rewards"]["text"]] == ["shapes_text_reward", "dot_hating_text_reward"]
    assert meta["rewards"]["text"][1]["weight"] == 3.0
    assert "text-to-image" in card.data.to_dict()["task_categories"]
    assert "autonomous switch rate" in card.text and "`image/shapes_image_partial_reward`" in card.text
    run = json.loads((out / RUN_FILE).read_text())
    assert run["complete"] and run["num_shards"] == 3 and run["statistics"]["num_samples"] == 10

    # `trl-unified train --dataset_name <output_dir>` loads it; the collator rebuilds exactly the sampled sequence
    loaded = load_any_dataset(str(out))
    assert as_rows(loaded) == as_rows(dataset)
    adapter = get_adapter(model, tokenizer)
    collator = DataCollatorForInterleavedSequences(adapter)
    for index in (0, 3, 9):
        row = loaded[index]
        again = regenerate_sample(model, adapter, row, config)
        assert again.image_tokens == row["image_tokens"] and again.reasoning_ids == row["reasoning_ids"]
        assert collator.encode_row(row).input_ids == again.input_ids


def test_generated_dataset_trains(tiny, tmp_path):
    from trl_unified import RewardWeightedMultimodalConfig, RewardWeightedMultimodalTrainer

    model, tokenizer = tiny
    config = make_config(tmp_path, num_samples=3, shard_size=4)
    self_generate(model, tokenizer, shapes_rows(4), config, [shapes_text_reward], [shapes_image_partial_reward])
    train = load_any_dataset(config.output_dir)
    student, _ = tiny_causal_lm(seed=0, image_codec="shapes", num_image_tokens=64)
    args = RewardWeightedMultimodalConfig(
        output_dir=str(tmp_path / "rwr"), per_device_train_batch_size=4, max_steps=2, report_to="none", use_cpu=True,
        save_strategy="no", disable_tqdm=True, logging_steps=1, reward_weighting="softmax",
        weight_normalization="group",
        keep_constant_groups=True,  # a random model's K samples of a prompt all get the same text reward
    )  # fmt: skip
    trainer = RewardWeightedMultimodalTrainer(student, args=args, train_dataset=train, processing_class=tokenizer)
    before = [p.detach().clone() for p in student.parameters()]
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert losses and all(math.isfinite(loss) for loss in losses)
    assert any(not torch.equal(a, b) for a, b in zip(before, student.parameters()))


def test_samples_do_not_depend_on_shard_size_or_run(tiny, tmp_path):
    """Seeded per prompt: a prompt's samples are the same whatever shard it lands in or whatever came before it."""
    model, tokenizer = tiny
    rows = shapes_rows(5)
    small = self_generate(model, tokenizer, rows, make_config(tmp_path, "a", shard_size=1))
    big = self_generate(model, tokenizer, rows[2:], make_config(tmp_path, "b", shard_size=3))
    assert as_rows(small)[4:] == as_rows(big)
    assert len(set(map(tuple, small["image_tokens"]))) == 10  # distinct samples: seeds are not shared
    adapter = get_adapter(model, tokenizer)
    config = make_config(tmp_path)
    sampling = replace(config.sampling_config(), seed=prompt_seed(1, "shape-3"))
    direct = generate_samples(model, adapter, [rows[3]["prompt"]], 2, sampling, progress=False)
    assert [s.image_tokens for s in direct] == small["image_tokens"][6:8]


# ----- resume and changed settings ------------------------------------------------------------------------------------
def test_resume_regenerates_only_missing_or_broken_shards(tiny, tmp_path):
    model, tokenizer = tiny
    rows = shapes_rows(6)
    config = make_config(tmp_path)
    CALLS.clear()
    first = as_rows(self_generate(model, tokenizer, rows, config, (), [counting_image_reward]))
    assert len(CALLS) == 12
    out = Path(config.output_dir)
    shards = [shard_path(out, i, 3) for i in range(3)]
    kept = shards[0].stat().st_mtime_ns
    shards[1].unlink()  # never written
    shards[2].write_bytes(b"PAR1 not really")  # broken
    partial = out / "shards" / ".tmp-shard-00001-of-00003.parquet.999"
    partial.write_bytes(b"half a shard")  # a killed writer's leftover
    CALLS.clear()
    second = self_generate(model, tokenizer, rows, config, (), [counting_image_reward])
    assert sorted(CALLS) == sorted(row["prompt"] for row in rows[2:] for _ in range(2))
    assert shards[0].stat().st_mtime_ns == kept and not partial.exists()
    assert as_rows(second) == first
    # a finished run rerun with the same settings generates nothing and returns the same data
    CALLS.clear()
    assert as_rows(self_generate(model, tokenizer, rows, config, (), [counting_image_reward])) == first
    assert CALLS == []
    # settings that do not change the data may change on resume; the batch size may (float rounding): refused
    relaxed = make_config(tmp_path, progress=True)
    assert len(self_generate(model, tokenizer, rows, relaxed, (), [counting_image_reward])) == 12
    assert CALLS == []
    with pytest.raises(GenerationConfigMismatch, match=r"sampling\.batch_size"):
        self_generate(model, tokenizer, rows, make_config(tmp_path, batch_size=1), (), [counting_image_reward])


def test_changed_settings_are_refused_unless_overwrite(tiny, tmp_path):
    model, tokenizer = tiny
    rows = shapes_rows(4)
    self_generate(model, tokenizer, rows, make_config(tmp_path))
    with pytest.raises(GenerationConfigMismatch, match=r"sampling\.temperature: 1\.0 -> 0\.5"):
        self_generate(model, tokenizer, rows, make_config(tmp_path, temperature=0.5))
    with pytest.raises(GenerationConfigMismatch, match=r"prompts\.sha256"):
        self_generate(model, tokenizer, shapes_rows(4, seed=1), make_config(tmp_path))
    with pytest.raises(GenerationConfigMismatch, match=r"num_samples: 2 -> 3"):
        self_generate(model, tokenizer, rows, make_config(tmp_path, num_samples=3))
    with pytest.raises(GenerationConfigMismatch, match=r"rewards\.image"):
        self_generate(model, tokenizer, rows, make_config(tmp_path), (), [shapes_image_partial_reward])
    other, _ = tiny_causal_lm(seed=1, image_codec="shapes", num_image_tokens=64)
    with pytest.raises(GenerationConfigMismatch, match=r"model\.weights_digest"):
        self_generate(other, tokenizer, rows, make_config(tmp_path))
    redone = self_generate(model, tokenizer, rows, make_config(tmp_path, num_samples=3, overwrite=True))
    assert len(redone) == 12 and sorted(set(redone["sample_index"])) == [0, 1, 2]
    shards = sorted(p.name for p in (tmp_path / "out" / "shards").iterdir())
    expected = ["shard-00000-of-00002.parquet", "shard-00001-of-00002.parquet"]
    assert shards == sorted(expected + [name + ".sha256" for name in expected])
    run = json.loads((tmp_path / "out" / RUN_FILE).read_text())
    assert run["settings"]["num_samples"] == 3


# ----- prompt sources -------------------------------------------------------------------------------------------------
def test_prompt_sources(tmp_path):
    text = tmp_path / "prompts.txt"
    text.write_text("a red dot\n\n  two blue squares  \n")
    from_text = load_prompts(str(text))
    assert from_text["prompt"] == ["a red dot", "two blue squares"] and from_text["prompt_id"] == [0, 1]

    jsonl = tmp_path / "prompts.jsonl"
    jsonl.write_text("\n".join(json.dumps(row) for row in shapes_rows(3)))
    from_jsonl = load_prompts(str(jsonl), max_prompts=2)
    assert from_jsonl.column_names == ["prompt", "prompt_id", "category"]
    assert from_jsonl["prompt_id"] == ["shape-0", "shape-1"]

    Dataset.from_list([{"text": "a red dot", "uid": 7, "level": 1}]).save_to_disk(str(tmp_path / "disk"))
    from_disk = load_prompts(str(tmp_path / "disk"), prompt_column="text", prompt_id_column="uid")
    assert from_disk.to_list() == [{"prompt": "a red dot", "prompt_id": 7, "level": 1}]

    with pytest.raises(ValueError, match="not unique"):
        prepare_prompts([{"prompt": "a", "prompt_id": 1}, {"prompt": "b", "prompt_id": 1}])
    with pytest.raises(ValueError, match="clash"):
        prepare_prompts([{"prompt": "a", "image_reward": 1.0}])
    with pytest.raises(ValueError, match="no column 'prompt'"):
        prepare_prompts([{"question": "a"}])


# ----- CLI parsing ----------------------------------------------------------------------------------------------------
def test_cli_parser_reads_yaml_and_flags(tmp_path):
    from trl_unified.scripts.generate import make_parser

    path = tmp_path / "gen.yaml"
    path.write_text(yaml.safe_dump({
        "model_name_or_path": "m", "prompts": "p.jsonl", "num_samples": 8, "guidance_scale": 3.0, "mode": "staged",
        "image_rewards": ["clip:openai/clip", "python:m:f"], "image_reward_weights": [1.0, 0.5], "shard_size": 16,
    }))  # fmt: skip
    (config,) = make_parser().parse_args_and_config(
        args=["--config", str(path), "--output_dir", "out", "--temperature", "0.7", "--text_rewards", "python:a:b",
              "--top_k", "50", "--push_to_hub", "--hub_dataset_id", "me/data"]
    )  # fmt: skip
    assert isinstance(config, SelfGenerationConfig)
    assert config.num_samples == 8 and config.mode == "staged" and config.shard_size == 16
    assert config.image_rewards == ["clip:openai/clip", "python:m:f"] and config.image_reward_weights == [1.0, 0.5]
    assert config.text_rewards == ["python:a:b"] and config.push_to_hub and config.hub_dataset_id == "me/data"
    sampling = config.sampling_config()
    assert (sampling.guidance_scale, sampling.temperature, sampling.top_k, sampling.mode) == (3.0, 0.7, 50, "staged")
    with pytest.raises(ValueError, match="weights"):
        SelfGenerationConfig(image_rewards=["python:m:f"], image_reward_weights=[1.0, 2.0])
    with pytest.raises(SystemExit):  # argparse refuses a mode the sampler does not have
        make_parser().parse_args_and_config(args=["--mode", "sideways"])


# ----- Hub ------------------------------------------------------------------------------------------------------------
def test_push_to_hub_with_card(tiny, tmp_path, local_hub):
    import io

    import pyarrow.parquet as pq

    model, tokenizer = tiny
    config = make_config(tmp_path, push_to_hub=True, hub_dataset_id="test-user/tiny-selfgen")
    dataset = self_generate(
        model, tokenizer, shapes_rows(3), config, [shapes_text_reward], [shapes_image_partial_reward]
    )
    files = local_hub.files("test-user/tiny-selfgen", repo_type="dataset")
    parquet = [name for name in files if name.startswith("data/") and name.endswith(".parquet")]
    assert parquet and RUN_FILE in files
    table = pq.read_table(io.BytesIO(files[parquet[0]]))
    assert table.num_rows == len(dataset) == 6
    assert table.column("image").to_pylist()[0]["bytes"][:4] == b"\x89PNG"  # embedded, not a local path
    card = DatasetCard(files["README.md"].decode())
    meta = card.data.to_dict()
    assert meta["trl_unified"]["statistics"]["num_samples"] == 6  # our metadata ...
    assert meta["dataset_info"]["splits"][0]["num_examples"] == 6  # ... merged with datasets' own
    assert meta["trl_unified"]["rewards"]["image"][0]["name"] == "shapes_image_partial_reward"
    assert "## Statistics" in card.text and "tiny-selfgen" in card.text
    local_run = json.loads((tmp_path / "out" / RUN_FILE).read_text())
    assert json.loads(files[RUN_FILE])["fingerprint"] == local_run["fingerprint"]


def test_rng_batch_is_refused_before_anything_is_written(tmp_path):
    """``rng="batch"`` would tie samples to shards and batches: refused when the config is built, not after writing."""
    from trl_unified.scripts.generate import main

    with pytest.raises(ValueError, match="rng='row'"):
        SelfGenerationConfig(rng="batch")
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="rng='row'"):  # the command-line parser builds the config first
        main(["--model_name_or_path", "unused", "--prompts", "unused.txt", "--output_dir", str(out), "--rng", "batch"])
    assert not out.exists()
