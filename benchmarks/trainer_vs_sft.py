"""Throughput and peak memory: RewardWeightedMultimodalTrainer (`reward_weighting="none"`) vs TRL's SFTTrainer.

Both train the same tiny model (the shapes-world architecture: a 4-layer Llama, 128 hidden) on the same
interleaved rows ([prompt][reasoning]<boi>[64 image codes]<eoi>), same batch size, same number of steps. SFT gets
the rows pre-tokenized with a completion mask; its image tokens are scored on the full vocabulary, ours on the
code slice. Each trainer runs in its own process so peak memory is its own.

    python benchmarks/trainer_vs_sft.py [--steps 30] [--batch-size 32] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time


def rows(n: int, seed: int = 0) -> list[dict]:
    from trl_unified.shapes import generate_prompts, plan_for_prompt, render

    rng = random.Random(seed)
    prompts = generate_prompts(n, seed=seed)
    out = []
    for spec in prompts:
        plan, scene = plan_for_prompt(spec, rng)
        out.append({"prompt": spec.to_text(), "reasoning": plan, "image_tokens": render(scene), "prompt_id": 0})
    return out


def run_one(which: str, steps: int, batch_size: int, device: str) -> dict:
    import torch
    from datasets import Dataset

    from trl_unified.shapes.model import build_shapes_model

    torch.manual_seed(0)
    model, tokenizer = build_shapes_model(seed=0)
    data = rows(steps * batch_size)
    common = dict(
        output_dir=f"/tmp/bench-{which}",
        per_device_train_batch_size=batch_size,
        max_steps=steps,
        report_to="none",
        save_strategy="no",
        logging_steps=steps,
        use_cpu=device == "cpu",
        bf16=device == "cuda",
        disable_tqdm=True,
        gradient_checkpointing=False,
        seed=0,
    )
    if which == "rwr":
        from trl_unified import RewardWeightedMultimodalConfig, RewardWeightedMultimodalTrainer

        args = RewardWeightedMultimodalConfig(reward_weighting="none", **common)
        trainer = RewardWeightedMultimodalTrainer(
            model, args=args, train_dataset=Dataset.from_list(data), processing_class=tokenizer
        )
        tokens = sum(len(r["prompt_ids"]) + len(r["reasoning_ids"]) + 66 for r in trainer.train_dataset)
    else:
        from trl import SFTConfig, SFTTrainer

        from trl_unified.models.registry import get_adapter

        adapter = get_adapter(model, tokenizer)
        sft_rows = []
        for r in data:
            prompt = adapter.tokenize_prompt(r["prompt"])
            ids = prompt + adapter.tokenize_text(r["reasoning"]) + adapter.image_segment(r["image_tokens"]).input_ids
            sft_rows.append({"input_ids": ids, "completion_mask": [0] * len(prompt) + [1] * (len(ids) - len(prompt))})
        args = SFTConfig(completion_only_loss=True, **common)
        trainer = SFTTrainer(
            model=model, args=args, train_dataset=Dataset.from_list(sft_rows), processing_class=tokenizer
        )
        tokens = sum(len(r["input_ids"]) for r in sft_rows)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    result = {
        "trainer": which,
        "seconds": seconds,
        "samples_per_second": steps * batch_size / seconds,
        "tokens_per_second": tokens / seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if device == "cuda":
        result["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--child", choices=["rwr", "sft"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child, args.steps, args.batch_size, args.device)))
        return
    results = {}
    for which in ("sft", "rwr"):
        cmd = [
            sys.executable,
            __file__,
            "--child",
            which,
            "--steps",
            str(args.steps),
            "--batch-size",
            str(args.batch_size),
            "--device",
            args.device,
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        results[which] = json.loads(out.strip().splitlines()[-1])
    for r in results.values():
        line = f"{r['trainer']:>4}: {r['samples_per_second']:8.1f} samples/s  {r['tokens_per_second']:9.0f} tokens/s  peak RSS {r['peak_rss_mib']:7.0f} MiB"
        if "peak_cuda_mib" in r:
            line += f"  peak CUDA {r['peak_cuda_mib']:7.0f} MiB"
        print(line)
    print(
        f"throughput ratio (ours / SFTTrainer): {results['rwr']['samples_per_second'] / results['sft']['samples_per_second']:.2f}"
    )
    print(
        f"peak RSS ratio   (ours / SFTTrainer): {results['rwr']['peak_rss_mib'] / results['sft']['peak_rss_mib']:.2f}"
    )
    if "peak_cuda_mib" in results["rwr"]:
        print(
            f"peak CUDA ratio  (ours / SFTTrainer): {results['rwr']['peak_cuda_mib'] / results['sft']['peak_cuda_mib']:.2f}"
        )


if __name__ == "__main__":
    main()
