"""Self-generation as real processes: `trl-unified generate` killed with SIGKILL mid-run and restarted, and run under
`torchrun --nproc_per_node 2` (gloo, CPU); both must give exactly the data of one uninterrupted run."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
from datasets import Image as ImageFeature

from trl_unified.shapes import generate_prompts, shapes_image_partial_reward
from trl_unified.testing.causal_lm import tiny_causal_lm

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
NUM_PROMPTS, NUM_SAMPLES = 6, 2  # shard_size 1: 6 shards
SPY = "python:tests.generation.test_self_generation_processes:spy_image_reward"


def spy_image_reward(prompts, reasoning, images, **columns):
    """shapes partial credit; logs which process scored which prompt (SPY_LOG) and can be slow (SPY_DELAY seconds)."""
    log = os.environ.get("SPY_LOG")
    if log:
        with open(log, "a") as handle:
            for prompt in prompts:
                handle.write(json.dumps({"rank": int(os.environ.get("RANK", "0")), "prompt": prompt}) + "\n")
    time.sleep(float(os.environ.get("SPY_DELAY", "0")))
    return shapes_image_partial_reward(prompts, reasoning, images)


def as_rows(dataset):
    rows = dataset.cast_column("image", ImageFeature(decode=False)).to_list()
    return [{k: "nan" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()} for row in rows]


def spy_log(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()] if Path(path).exists() else []


@pytest.fixture(scope="module")
def run_setup(tmp_path_factory):
    """A saved tiny model, a JSONL prompts file, the CLI arguments, and the reference: one uninterrupted run of the
    command's own code (`trl_unified.scripts.generate.run`), in this process, single-threaded like the subprocesses."""
    from trl_unified.scripts.generate import make_parser, run

    root = tmp_path_factory.mktemp("selfgen_processes")
    model, tokenizer = tiny_causal_lm(seed=0, image_codec="shapes", num_image_tokens=64)
    model.save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    specs = generate_prompts(NUM_PROMPTS, seed=0)
    prompts = [{"prompt": s.to_text(), "prompt_id": f"p{i}", "category": s.category} for i, s in enumerate(specs)]
    (root / "prompts.jsonl").write_text("\n".join(json.dumps(p) for p in prompts))
    args = [
        "--model_name_or_path", str(root / "model"), "--prompts", str(root / "prompts.jsonl"),
        "--num_samples", str(NUM_SAMPLES), "--shard_size", "1", "--max_text_tokens", "6", "--seed", "5",
        "--guidance_scale", "3", "--text_rewards", "python:trl_unified.shapes.rewards:shapes_text_reward",
        "--image_rewards", SPY, "--no_progress",
    ]  # fmt: skip
    (config,) = make_parser().parse_args_and_config(args=args + ["--output_dir", str(root / "reference")])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        reference = run(config)
    finally:
        torch.set_num_threads(threads)
    assert len(reference) == NUM_PROMPTS * NUM_SAMPLES
    return root, args, prompts, reference


def environment(**extra):
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
        PYTHONPATH=os.pathsep.join([str(ROOT), str(HERE)]), **extra,
    )  # fmt: skip
    env.pop("WORLD_SIZE", None)
    return env


def fingerprint_of(output_dir):
    return json.loads((Path(output_dir) / "trl_unified_run.json").read_text())["fingerprint"]


def test_sigkill_then_restart_resumes_without_duplicates_or_gaps(run_setup, capsys):
    from trl_unified.data.loading import load_any_dataset

    root, args, prompts, reference = run_setup
    out, log = root / "killed", root / "killed.log"
    command = [sys.executable, "-m", "trl_unified.cli", "generate", *args, "--output_dir", str(out)]
    shards = out / "shards"
    with open(root / "killed.out", "wb") as output:
        # SPY_DELAY: every shard takes a while to score, so the kill lands mid-run
        process = subprocess.Popen(command, env=environment(SPY_DELAY="1.0", SPY_LOG=str(log)), stdout=output,
                                   stderr=subprocess.STDOUT, cwd=ROOT)  # fmt: skip
        try:
            deadline = time.time() + 240
            while not list(shards.glob("shard-*.parquet")):
                assert process.poll() is None, (root / "killed.out").read_text()[-3000:]
                assert time.time() < deadline, "no shard written in time"
                time.sleep(0.05)
            process.send_signal(signal.SIGKILL)
        finally:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    written = sorted(shards.glob("shard-*.parquet"))
    assert 1 <= len(written) < NUM_PROMPTS, "the kill must interrupt the run"
    assert not (out / "dataset_info.json").exists()  # nothing assembled: the run did not finish
    before = {path.name: (path.stat().st_mtime_ns, path.read_bytes()) for path in written}
    scored_before = Counter(entry["prompt"] for entry in spy_log(log))

    log.unlink(missing_ok=True)
    result = subprocess.run(command, env=environment(SPY_LOG=str(log)), capture_output=True, text=True, cwd=ROOT,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "samples: 12 (6 prompts)" in result.stdout and "autonomous switch rate" in result.stdout

    # the finished shards were kept as they were, only the others were generated (and scored) again
    for name, (mtime, data) in before.items():
        assert (shards / name).stat().st_mtime_ns == mtime and (shards / name).read_bytes() == data
    kept = {prompts[int(name.split("-")[1])]["prompt"] for name in before}
    scored_after = Counter(entry["prompt"] for entry in spy_log(log))
    assert set(scored_after) == {p["prompt"] for p in prompts} - kept
    assert all(count == NUM_SAMPLES for count in scored_after.values())
    assert kept <= set(scored_before)
    assert sorted(p.name for p in shards.glob("*.parquet")) == [f"shard-{i:05d}-of-00006.parquet" for i in range(6)]

    resumed = load_any_dataset(str(out))
    keys = list(zip(resumed["prompt_id"], resumed["sample_index"]))
    assert len(keys) == len(set(keys)) == NUM_PROMPTS * NUM_SAMPLES
    assert as_rows(resumed) == as_rows(reference)  # same rows, same tokens, same images, same rewards
    assert fingerprint_of(out) == fingerprint_of(root / "reference")

    # the same command with another setting is refused (a clean exit naming the difference, no traceback)
    from trl_unified.cli import main

    assert main(["generate", *args, "--output_dir", str(out), "--temperature", "0.5"]) == 2
    message = capsys.readouterr().err
    assert "holds a run with other settings" in message and "sampling.temperature: 1.0 -> 0.5" in message
    assert "--overwrite" in message
    assert as_rows(load_any_dataset(str(out))) == as_rows(reference)  # and left untouched


def test_torchrun_two_processes_split_shards_and_match_one_process(run_setup):
    from trl_unified.data.loading import load_any_dataset

    root, args, prompts, reference = run_setup
    out, log = root / "ddp", root / "ddp.log"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "trl_unified.cli", "generate", *args, "--output_dir", str(out),
    ]  # fmt: skip
    result = subprocess.run(command, env=environment(SPY_LOG=str(log)), capture_output=True, text=True, cwd=ROOT,
                            timeout=400)  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert result.stdout.count("samples: 12 (6 prompts)") == 1  # the main process reports, once

    # each process scored (so generated) exactly its own shards: shard i on process i % 2
    ranks = {entry["prompt"]: set() for entry in spy_log(log)}
    for entry in spy_log(log):
        ranks[entry["prompt"]].add(entry["rank"])
    assert {p["prompt"]: {i % 2} for i, p in enumerate(prompts)} == ranks
    assert len(spy_log(log)) == NUM_PROMPTS * NUM_SAMPLES  # nothing generated twice

    union = load_any_dataset(str(out))
    assert as_rows(union) == as_rows(reference)
    assert fingerprint_of(out) == fingerprint_of(root / "reference")
