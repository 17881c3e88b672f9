"""Images per second: trl_unified's sampler vs transformers' own image generation, on tiny random Janus and Emu3.

    python benchmarks/sampler_throughput.py            # both families, < 2 minutes on 2 CPU cores
    python benchmarks/sampler_throughput.py --images 32 --repeats 5 --threads 2 --device cuda

Same models, prompts, number of images, guidance scale and seed on both sides; the sampler runs ``mode="image_only"``
with ``rng="batch"`` and the whole request in one batch, i.e. the configuration in which its image tokens equal
transformers' token for token (the table says whether they did). transformers' side is:

* Janus: ``model.generate(**processor(text=prompts, generation_mode="image"), generation_mode="image",
  guidance_scale=g, do_sample=True, temperature=1.0, top_k=0, top_p=1.0)`` (static cache, [cond; uncond] batch);
* Emu3: the model doc's constrained ``generate`` (``prefix_allowed_tokens_fn``, ``guidance_scale=g`` with the
  sampler's unconditional rows as ``negative_prompt_ids``), as ``trl_unified.testing.emu3`` runs it, without
  ``output_scores``.

Each (family, method) runs in its own subprocess, so ``ru_maxrss`` (peak resident memory of the whole process) is that
method's alone; "peak Δ" is the growth of that peak over the process's peak after loading the model and one warm-up
run (0 when the timed runs stayed under it). With ``--device cuda`` the peak GPU memory is also reported.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def maxrss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 / (1024 if sys.platform == "darwin" else 1)  # bytes on macOS, KiB on Linux


def worker(family: str, method: str, args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    from trl_unified.generation.sampler import SamplingConfig, generate_samples

    device = torch.device(args.device)
    if family == "janus":
        from trl_unified.models.janus import JanusAdapter
        from trl_unified.testing.janus import tiny_janus

        model, processor = tiny_janus(seed=0)
        adapter = JanusAdapter(model.to(device), processor)
    else:
        from trl_unified.models.emu3 import Emu3Adapter
        from trl_unified.testing.emu3 import emu3_prefix_allowed_tokens_fn, tiny_emu3

        model, processor = tiny_emu3(seed=0)
        adapter = Emu3Adapter(model.to(device), processor)
    # equal-length prompts: transformers' image loops do not handle left padding the way the sampler does
    prompts = [f"a shape number {i:03d}" for i in range(args.images)]
    g = args.guidance_scale

    if method == "sampler":
        config = SamplingConfig(
            mode="image_only", guidance_scale=g, seed=args.seed, rng="batch", batch_size=args.images,
            decode_images=False,
        )

        def run():
            samples = generate_samples(model, adapter, prompts, 1, config, progress=False)
            return [s.image_tokens for s in samples]

    elif family == "janus":
        inputs = processor(text=prompts, generation_mode="image", return_tensors="pt").to(device)

        def run():
            torch.manual_seed(args.seed)
            with torch.no_grad():
                out = model.generate(
                    **inputs, generation_mode="image", guidance_scale=g, do_sample=True, temperature=1.0, top_k=0,
                    top_p=1.0,
                )
            return out.tolist()

    else:
        inputs = processor(text=prompts, padding=True, return_tensors="pt", return_for_image_generation=True)
        height, width = (int(v) for v in inputs.pop("image_sizes")[0])
        inputs = inputs.to(device)
        negative = torch.tensor(
            [
                adapter.unconditional_ids(adapter.tokenize_prompt(p) + [adapter.boi_token_id])
                + adapter.header_token_ids
                + [adapter.image_wrapper_token_id]
                for p in prompts
            ],
            device=device,
        )
        allowed = emu3_prefix_allowed_tokens_fn(model, processor, height, width)

        def run():
            torch.manual_seed(args.seed)
            with torch.no_grad():
                out = model.generate(
                    **inputs, prefix_allowed_tokens_fn=allowed, max_new_tokens=height * (width + 1) + 3,
                    do_sample=True, temperature=1.0, top_k=0, top_p=1.0, guidance_scale=g,
                    negative_prompt_ids=negative, negative_prompt_attention_mask=torch.ones_like(negative),
                )
            rows = out[:, inputs["input_ids"].shape[1] :][:, :-3].reshape(len(prompts), height, width + 1).cpu()
            return model.vocabulary_mapping.convert_bpe2img(rows).reshape(len(prompts), -1).tolist()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    codes = run()  # warm-up (and the codes compared between methods)
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    base_rss = maxrss_mib()
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        run()
        sync()
        times.append(time.perf_counter() - start)
    result = {
        "family": family,
        "method": method,
        "images": args.images,
        "seconds": statistics.median(times),
        "images_per_s": args.images / statistics.median(times),
        "maxrss_mib": maxrss_mib(),
        "peak_delta_mib": maxrss_mib() - base_rss,
        "codes": codes,
    }
    if device.type == "cuda":
        result["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=["janus", "emu3"], choices=["janus", "emu3"])
    parser.add_argument("--images", type=int, default=32, help="images per run (one batch on both sides)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per method (median reported)")
    parser.add_argument("--guidance-scale", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (tiny matmuls: 1 is fastest)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--worker", nargs=2, metavar=("FAMILY", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print("RESULT " + json.dumps(worker(*args.worker, args)), flush=True)
        return

    print(
        f"{args.images} images per run, guidance {args.guidance_scale}, median of {args.repeats} runs, "
        f"{args.threads} thread(s), device {args.device}"
    )
    header = f"{'family':<6} {'method':<13} {'s/run':>8} {'img/s':>9} {'maxrss MiB':>11} {'peak Δ MiB':>11}"
    if args.device.startswith("cuda"):
        header += f" {'GPU peak MiB':>13}"
    print(header)
    summary = []
    for family in args.families:
        results = {}
        for method in ("transformers", "sampler"):
            command = [sys.executable, os.path.abspath(__file__), "--worker", family, method]
            command += ["--images", str(args.images), "--repeats", str(args.repeats), "--seed", str(args.seed)]
            command += ["--guidance-scale", str(args.guidance_scale), "--threads", str(args.threads)]
            command += ["--device", args.device]
            out = subprocess.run(command, capture_output=True, text=True)
            lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
            if out.returncode or not lines:
                sys.stderr.write(out.stderr[-4000:])
                raise SystemExit(f"{family}/{method} failed (exit {out.returncode})")
            r = results[method] = json.loads(lines[-1][len("RESULT ") :])
            line = (
                f"{family:<6} {method:<13} {r['seconds']:>8.3f} {r['images_per_s']:>9.1f} "
                f"{r['maxrss_mib']:>11.1f} {r['peak_delta_mib']:>11.1f}"
            )
            if "cuda_peak_mib" in r:
                line += f" {r['cuda_peak_mib']:>13.1f}"
            print(line, flush=True)
        ratio = results["sampler"]["images_per_s"] / results["transformers"]["images_per_s"]
        same = results["sampler"]["codes"] == results["transformers"]["codes"]
        summary.append(f"{family}: sampler / transformers = {ratio:.2f}x images/s; identical image tokens: {same}")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
