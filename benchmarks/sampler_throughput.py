"""trl_unified's one-pass sampler vs transformers, on random Janus and Emu3 models of a chosen size.

    python benchmarks/sampler_throughput.py                         # bigger tiny models (hidden 256, 4 layers)
    python benchmarks/sampler_throughput.py --size janus-pro-1b --images 4 --repeats 3
    python benchmarks/sampler_throughput.py --size tiny --families emu3 --cases image_only

Two cases, each timed against its baseline **in the same process, interleaved** (sampler, baseline, sampler, ...,
after one warm-up of each), reporting the median CPU time (``time.process_time``: all threads of this process; the
robust number on a shared machine) and the median wall time:

* ``image_only``: ``generate_samples(mode="image_only", rng="batch")`` with the whole request in one batch vs
  transformers' own image generation (Janus: ``generate(generation_mode="image")``; Emu3: the model doc's constrained
  ``generate`` with ``negative_prompt_ids``), same prompts, guidance and seed. In this configuration the sampler's
  codes equal transformers' token for token; the table says whether they did.
* ``unified``: ``generate_samples(mode="unified")`` (reasoning until begin-of-image, then the image, one pass) vs the
  two calls a user writes today: ``generate`` for the text (same budget, same sampling), then transformers' image
  generation on ``prompt + reasoning`` (Janus: ``generate(generation_mode="image")`` on the processor's image prompt;
  Emu3: the constrained ``generate`` with the adapter's unconditional rows as negative prompts). The samples differ
  (other random streams), the work per image is the same up to the reasoning lengths, which are reported.

Sizes (random weights; ``--layers`` overrides the depth):

* ``tiny``: the test models (hidden 32, 2 layers, 16 codes per image);
* ``bigger``: hidden 256, 4 layers, 8 heads, 256 codes per image (16 x 16), codebook 1024;
* ``janus-pro-1b``: Janus-Pro-1B's shapes (hidden 2048, MLP 5632, 16 heads, vocabulary 102400, codebook 16384,
  576 codes per image = 24 x 24) with 2 layers instead of 24; Emu3 gets the same shapes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

SIZES = {
    "tiny": {},
    "bigger": {
        "hidden_size": 256,
        "intermediate_size": 688,
        "num_layers": 4,
        "num_heads": 8,
        "num_kv_heads": 8,
        "codebook_size": 1024,
        "tokens_per_side": 16,
    },
    "janus-pro-1b": {
        "hidden_size": 2048,
        "intermediate_size": 5632,
        "num_layers": 2,
        "num_heads": 16,
        "num_kv_heads": 16,
        "codebook_size": 16384,
        "tokens_per_side": 24,
        "vocab_size": 102400,
    },
}


def build(family: str, size: dict):
    """``(model, processor, adapter)`` of one family at one size."""
    if family == "janus":
        from trl_unified.models.janus import JanusAdapter
        from trl_unified.testing.janus import tiny_janus

        model, processor = tiny_janus(seed=0, **size)
        return model, processor, JanusAdapter(model, processor)
    from trl_unified.models.emu3 import Emu3Adapter
    from trl_unified.testing.emu3 import tiny_emu3

    size = dict(size)
    text = {}
    for ours, theirs in (
        ("hidden_size", "hidden_size"),
        ("intermediate_size", "intermediate_size"),
        ("num_layers", "num_hidden_layers"),
        ("num_heads", "num_attention_heads"),
        ("num_kv_heads", "num_key_value_heads"),
        ("vocab_size", "vocab_size"),
    ):
        if ours in size:
            text[theirs] = size.pop(ours)
    if "tokens_per_side" in size:
        text["max_position_embeddings"] = 4 * size["tokens_per_side"] ** 2
    model, processor = tiny_emu3(seed=0, **size, **text)
    return model, processor, Emu3Adapter(model, processor)


def transformers_image(family, model, processor, adapter, contexts, args):
    """transformers' own image generation for the prompt strings ``contexts`` (one batch) -> a run function."""
    import torch

    g = args.guidance_scale
    if family == "janus":
        inputs = processor(text=contexts, generation_mode="image", padding=True, return_tensors="pt")

        def run():
            torch.manual_seed(args.seed)
            with torch.no_grad():
                out = model.generate(
                    **inputs,
                    generation_mode="image",
                    guidance_scale=g,
                    do_sample=True,
                    temperature=1.0,
                    top_k=0,
                    top_p=1.0,
                )
            return out.tolist()

        return run

    inputs = processor(text=contexts, padding=True, return_tensors="pt", return_for_image_generation=True)
    height, width = (int(v) for v in inputs.pop("image_sizes")[0])
    negative = [
        adapter.unconditional_ids(adapter.tokenize_prompt(c) + [adapter.boi_token_id])
        + adapter.header_token_ids
        + [adapter.image_wrapper_token_id]
        for c in contexts
    ]
    width_ = max(len(n) for n in negative)
    negative_ids = torch.tensor([[adapter.pad_token_id] * (width_ - len(n)) + n for n in negative])
    negative_mask = torch.tensor([[0] * (width_ - len(n)) + [1] * len(n) for n in negative])
    from trl_unified.testing.emu3 import emu3_prefix_allowed_tokens_fn

    allowed = emu3_prefix_allowed_tokens_fn(model, processor, height, width)

    def run():
        torch.manual_seed(args.seed)
        with torch.no_grad():
            out = model.generate(
                **inputs,
                prefix_allowed_tokens_fn=allowed,
                max_new_tokens=height * (width + 1) + 3,
                do_sample=True,
                temperature=1.0,
                top_k=0,
                top_p=1.0,
                guidance_scale=g,
                negative_prompt_ids=negative_ids,
                negative_prompt_attention_mask=negative_mask,
            )
        rows = out[:, inputs["input_ids"].shape[1] :][:, :-3].reshape(len(contexts), height, width + 1)
        return model.vocabulary_mapping.convert_bpe2img(rows).reshape(len(contexts), -1).tolist()

    return run


def cases(family, model, processor, adapter, args):
    """``{case: (sampler run, baseline run, whether the codes must match, reasoning lengths or None)}``."""
    import torch

    from trl_unified.generation.sampler import SamplingConfig, generate_samples

    # equal-length prompts: transformers' image loops do not give left-padded rows their own positions
    prompts = [f"a shape number {i:03d}" for i in range(args.images)]
    out = {}
    if "image_only" in args.cases:
        image_config = SamplingConfig(
            mode="image_only",
            guidance_scale=args.guidance_scale,
            seed=args.seed,
            rng="batch",
            batch_size=args.images,
            decode_images=False,
        )

        def ours():
            samples = generate_samples(model, adapter, prompts, 1, image_config, progress=False)
            return [s.image_tokens for s in samples]

        out["image_only"] = (ours, transformers_image(family, model, processor, adapter, prompts, args), True, None)
    if "unified" in args.cases:
        unified_config = SamplingConfig(
            mode="unified",
            max_text_tokens=args.text_tokens,
            guidance_scale=args.guidance_scale,
            seed=args.seed,
            batch_size=args.images,
            decode_images=False,
        )
        lengths = {}

        def ours_unified():
            samples = generate_samples(model, adapter, prompts, 1, unified_config, progress=False)
            lengths["sampler"] = statistics.mean(len(s.reasoning_ids) for s in samples)
            return [s.image_tokens for s in samples]

        tokenizer = adapter.tokenizer
        prompt_ids = [adapter.tokenize_prompt(p) for p in prompts]
        width = max(len(p) for p in prompt_ids)
        text_inputs = {
            "input_ids": torch.tensor([[adapter.pad_token_id] * (width - len(p)) + p for p in prompt_ids]),
            "attention_mask": torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompt_ids]),
        }

        def two_calls():
            torch.manual_seed(args.seed)
            with torch.no_grad():
                text = model.generate(
                    **text_inputs,
                    max_new_tokens=args.text_tokens,
                    do_sample=True,
                    temperature=1.0,
                    top_k=0,
                    top_p=1.0,
                    pad_token_id=adapter.pad_token_id,
                    eos_token_id=adapter.eos_token_id,
                )
            reasoning = tokenizer.batch_decode(text[:, width:], skip_special_tokens=True)
            lengths["two calls"] = statistics.mean(int((row != adapter.pad_token_id).sum()) for row in text[:, width:])
            contexts = [p + r for p, r in zip(prompts, reasoning)]
            return transformers_image(family, model, processor, adapter, contexts, args)()

        out["unified"] = (ours_unified, two_calls, False, lengths)
    return out


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=["janus", "emu3"], choices=["janus", "emu3"])
    parser.add_argument("--cases", nargs="+", default=["image_only", "unified"], choices=["image_only", "unified"])
    parser.add_argument("--size", default="bigger", choices=list(SIZES))
    parser.add_argument("--layers", type=int, default=None, help="override the number of decoder layers")
    parser.add_argument("--images", type=int, default=8, help="images per run (one batch on both sides)")
    parser.add_argument("--text-tokens", type=int, default=32, help="reasoning budget in the unified case")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per method (median reported)")
    parser.add_argument("--guidance-scale", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    size = dict(SIZES[args.size])
    if args.layers:
        size["num_layers"] = args.layers
    print(
        f"size {args.size} {size}, {args.images} images per run, guidance {args.guidance_scale}, "
        f"median of {args.repeats} interleaved runs, {args.threads} thread(s), torch {torch.__version__}"
    )
    print(f"{'family':<6} {'case':<11} {'method':<13} {'CPU s':>8} {'wall s':>8}")
    summary = []
    for family in args.families:
        model, processor, adapter = build(family, size)
        for case, (ours, baseline, check, lengths) in cases(family, model, processor, adapter, args).items():
            names = ("sampler", "transformers" if case == "image_only" else "two calls")
            codes = [ours(), baseline()]  # warm-up
            times = {name: [] for name in names}
            for _ in range(args.repeats):
                for name, fn in zip(names, (ours, baseline)):
                    times[name].append(timed(fn)[:2])
            medians = {}
            for name in names:
                wall = statistics.median(t[0] for t in times[name])
                cpu = statistics.median(t[1] for t in times[name])
                medians[name] = (wall, cpu)
                print(f"{family:<6} {case:<11} {name:<13} {cpu:>8.2f} {wall:>8.2f}", flush=True)
            cpu_ratio = medians[names[1]][1] / medians[names[0]][1]
            wall_ratio = medians[names[1]][0] / medians[names[0]][0]
            line = f"{family} {case}: sampler is {cpu_ratio:.2f}x faster in CPU time, {wall_ratio:.2f}x in wall time"
            if check:
                line += f"; identical image tokens: {codes[0] == codes[1]}"
            if lengths:
                line += "; mean reasoning tokens " + ", ".join(f"{k} {v:.1f}" for k, v in lengths.items())
            summary.append(line)
        del model
    print("\n".join(summary))


if __name__ == "__main__":
    main()
