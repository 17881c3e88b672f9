"""Nothing lost, nothing silently wrong, in self-generation's output folder (issue #15): folders that are not a run of
this package are refused and left untouched, `overwrite` removes only what a run wrote, one writer at a time, the model
is identified by its whole weights, corrupted shards are regenerated, and an unfinished run is not trained on."""

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from datasets import Dataset

from trl_unified.data.loading import load_any_dataset
from trl_unified.generation.run_state import (
    LEGACY_RUN_FILE,
    LOCK_FILE,
    RUN_FILE,
    GenerationConfigMismatch,
    OutputDirError,
    model_identity,
)
from trl_unified.generation.self_generation import self_generate
from trl_unified.generation.self_generation_config import SelfGenerationConfig
from trl_unified.generation.shards import shard_path
from trl_unified.models.registry import get_adapter
from trl_unified.shapes import generate_prompts, shapes_image_partial_reward
from trl_unified.testing.causal_lm import tiny_causal_lm

CALLS = []


def counting_reward(prompts, reasoning, images, **columns):
    CALLS.extend(prompts)
    return shapes_image_partial_reward(prompts, reasoning, images)


@pytest.fixture(scope="module")
def tiny():
    model, tokenizer = tiny_causal_lm(seed=0, image_codec="shapes", num_image_tokens=64)
    return model.eval(), tokenizer


def rows(n=4):
    return [{"prompt": s.to_text(), "prompt_id": f"p{i}"} for i, s in enumerate(generate_prompts(n, seed=0))]


def config(output_dir, **overrides):
    settings = {"output_dir": str(output_dir), "num_samples": 2, "shard_size": 2, "max_text_tokens": 4, "seed": 1}
    settings["progress"] = False
    return SelfGenerationConfig(**{**settings, **overrides})


def generate(tiny, output_dir, **overrides):
    model, tokenizer = tiny
    return self_generate(model, tokenizer, rows(), config(output_dir, **overrides), (), [counting_reward])


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ----- folders that are not ours --------------------------------------------------------------------------------------
def test_prompts_save_to_disk_folder_is_refused_and_untouched(tiny, tmp_path):
    folder = tmp_path / "prompts"
    Dataset.from_list(rows()).save_to_disk(str(folder))
    before = snapshot(folder)
    for overwrite in (False, True):
        with pytest.raises(OutputDirError, match=rf"{folder} is not empty and holds no trl-unified run.*dataset_info"):
            generate(tiny, folder, overwrite=overwrite)
    assert snapshot(folder) == before


def test_folder_with_readme_and_dataset_info_is_refused(tiny, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "README.md").write_text("my notes")
    (folder / "dataset_info.json").write_text("{}")
    with pytest.raises(OutputDirError, match="README.md"):
        generate(tiny, folder, overwrite=True)
    assert (folder / "README.md").read_text() == "my notes" and (folder / "dataset_info.json").read_text() == "{}"


def test_model_folder_generation_config_is_not_read_as_a_run(tiny, tmp_path):
    model, tokenizer = tiny
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    assert (folder / LEGACY_RUN_FILE).exists()  # transformers' own generation_config.json
    before = snapshot(folder)
    with pytest.raises(OutputDirError, match="generation_config.json"):
        generate(tiny, folder, overwrite=True)
    assert snapshot(folder) == before


def test_a_legacy_run_file_that_is_ours_is_adopted_and_migrated(tiny, tmp_path):
    out = tmp_path / "out"
    generate(tiny, out)
    os.replace(out / RUN_FILE, out / LEGACY_RUN_FILE)  # a folder written before the rename
    CALLS.clear()
    generate(tiny, out)
    assert CALLS == []  # resumed: nothing generated again
    assert (out / RUN_FILE).exists() and not (out / LEGACY_RUN_FILE).exists()


def test_an_empty_folder_and_a_new_one_are_fine(tiny, tmp_path):
    (tmp_path / "empty").mkdir()
    assert len(generate(tiny, tmp_path / "empty")) == 8
    assert len(generate(tiny, tmp_path / "new" / "nested")) == 8


# ----- overwrite removes only what a run wrote ------------------------------------------------------------------------
def test_overwrite_keeps_files_the_run_did_not_write(tiny, tmp_path):
    out = tmp_path / "out"
    generate(tiny, out)
    (out / "notes.txt").write_text("keep me")
    (out / "shards" / "my_analysis.csv").write_text("keep me too")
    with pytest.raises(GenerationConfigMismatch):
        generate(tiny, out, temperature=0.5)
    redone = generate(tiny, out, temperature=0.5, overwrite=True)
    assert len(redone) == 8
    assert (out / "notes.txt").read_text() == "keep me"
    assert (out / "shards" / "my_analysis.csv").read_text() == "keep me too"
    assert json.loads((out / RUN_FILE).read_text())["settings"]["sampling"]["temperature"] == 0.5


# ----- the model is its weights, not its path -------------------------------------------------------------------------
def test_relative_and_absolute_model_paths_resume_the_same_run(tiny, tmp_path):
    out = tmp_path / "out"
    generate(tiny, out, model_name_or_path="models/tiny")
    CALLS.clear()
    generate(tiny, out, model_name_or_path=str(tmp_path / "models" / "tiny"))
    assert CALLS == []  # resumed, no shard deleted or regenerated
    run = json.loads((out / RUN_FILE).read_text())
    assert "name_or_path" not in run["settings"]["model"] and run["model_source"]["name_or_path"]


def test_weights_digest_covers_whole_tensors_and_dtype(tiny):
    model, tokenizer = tiny
    adapter = get_adapter(model, tokenizer)
    cfg = SelfGenerationConfig(seed=0)
    other, _ = tiny_causal_lm(seed=0, image_codec="shapes", num_image_tokens=64)
    assert model_identity(other, adapter, cfg) == model_identity(model, adapter, cfg)
    weight = max(other.parameters(), key=lambda p: p.numel())
    with torch.no_grad():
        weight.view(-1)[-1] += 1e-3  # the last value of a tensor (the old digest read only the first 4096)
    digest = model_identity(model, adapter, cfg)["weights_digest"]
    assert model_identity(other, adapter, cfg)["weights_digest"] != digest
    half = model_identity(tiny_causal_lm(seed=0, image_codec="shapes", num_image_tokens=64)[0].bfloat16(), adapter, cfg)
    assert (
        half["dtypes"] == ["torch.bfloat16"]
        and half["weights_digest"] != model_identity(model, adapter, cfg)["weights_digest"]
    )


# ----- one writer -----------------------------------------------------------------------------------------------------
def test_lock_refuses_a_live_writer_and_takes_over_a_dead_one(tiny, tmp_path, caplog):
    out = tmp_path / "out"
    out.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / LOCK_FILE).write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname(), "since": "now"}))
        with pytest.raises(OutputDirError, match=rf"being written by process {sleeper.pid} on host"):
            generate(tiny, out)
        assert not (out / RUN_FILE).exists()
        (out / LOCK_FILE).write_text(json.dumps({"pid": 1, "host": "another-host", "since": "now"}))
        with pytest.raises(OutputDirError, match="another-host"):
            generate(tiny, out)
    finally:
        sleeper.kill()
        sleeper.wait()
    (out / LOCK_FILE).write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname(), "since": "now"}))
    with caplog.at_level(logging.WARNING):
        assert len(generate(tiny, out)) == 8  # the killed writer's lock is taken over
    assert "taking over the lock" in caplog.text
    assert not (out / LOCK_FILE).exists()  # released at the end


# ----- shards: checksums ----------------------------------------------------------------------------------------------
def test_a_shard_corrupted_inside_with_an_intact_footer_is_regenerated(tiny, tmp_path):
    out = tmp_path / "out"
    first = generate(tiny, out).to_list()
    shard = shard_path(out, 1, 2)
    data = bytearray(shard.read_bytes())
    middle = len(data) // 2
    data[middle] ^= 0xFF  # a flipped byte in a data page; the footer (row count) still reads
    shard.write_bytes(bytes(data))
    import pyarrow.parquet as pq

    assert pq.ParquetFile(shard).metadata.num_rows == 4
    CALLS.clear()
    again = generate(tiny, out).to_list()
    assert len(CALLS) == 4  # the two prompts of that shard, twice each
    assert again == first
    run = json.loads((out / RUN_FILE).read_text())
    assert sorted(run["shard_checksums"]) == [shard_path(out, i, 2).name for i in range(2)]


# ----- loading for training -------------------------------------------------------------------------------------------
def test_an_unfinished_run_is_refused_unless_asked_for(tiny, tmp_path):
    out = tmp_path / "out"
    full = generate(tiny, out)
    run = json.loads((out / RUN_FILE).read_text())
    run["complete"] = False  # as a killed run leaves it: one shard written of two, nothing assembled
    (out / RUN_FILE).write_text(json.dumps(run))
    for name in ("dataset_info.json", "state.json"):
        (out / name).unlink()
    shard_path(out, 1, 2).unlink()
    with pytest.raises(ValueError, match=r"unfinished self-generation run: 1 of 2 shards missing \(1 finished\)"):
        load_any_dataset(str(out))
    part = load_any_dataset(str(out), allow_incomplete=True)
    assert part.to_list() == full.select(range(4)).to_list()


def test_splits_that_do_not_exist_are_errors(tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"prompt": "a"}) + "\n")
    with pytest.raises(ValueError, match="no split 'nope'"):
        load_any_dataset(str(data), "nope")
    Dataset.from_list([{"prompt": "a"}]).save_to_disk(str(tmp_path / "disk"))
    with pytest.raises(ValueError, match="no split 'test'"):
        load_any_dataset(str(tmp_path / "disk"), "test")
    with pytest.raises(ValueError, match="no such file"):
        load_any_dataset(str(tmp_path / "missing.jsonl"))
    (tmp_path / "broken.jsonl").write_text("{not json\n")
    with pytest.raises(ValueError, match="broken.jsonl"):
        load_any_dataset(str(tmp_path / "broken.jsonl"))


# ----- rewards and prompts --------------------------------------------------------------------------------------------
def test_generation_without_rewards_warns(tiny, tmp_path, caplog):
    model, tokenizer = tiny
    with caplog.at_level(logging.WARNING):
        self_generate(model, tokenizer, rows(2), config(tmp_path / "a"))
    assert "without any reward" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        self_generate(model, tokenizer, rows(2), config(tmp_path / "b", no_rewards=True))
    assert "without any reward" not in caplog.text


def test_binary_prompts_file_names_the_path(tmp_path):
    from trl_unified.generation.prompts import load_prompts

    path = tmp_path / "prompts.txt"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(ValueError, match=rf"{path} is not UTF-8 text"):
        load_prompts(str(path))
