"""How many samples change with the batch size, in fp32 and bf16 (the shapes demo's base model, unified mode).

    python benchmarks/sampler_reproducibility.py [--prompts 32 --samples 2]

Samples the same prompts with ``batch_size`` 64, again with 64 (a rerun), then with 7 and 1, and counts the samples
(reasoning ids and image codes) that differ from the first run. ``rng="row"``: every sample has its own generator, so
only float rounding can tie a sample to its batch.
"""

import argparse
import dataclasses
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--samples", type=int, default=2)
    args = parser.parse_args()

    import torch

    from trl_unified.generation.sampler import SamplingConfig, generate_samples
    from trl_unified.models.registry import get_adapter
    from trl_unified.shapes.demo import default_eval_prompts
    from trl_unified.shapes.model import load_shapes_model

    torch.set_num_threads(1)
    prompts = default_eval_prompts(8, 0)[: args.prompts]
    config = SamplingConfig(
        mode="unified", max_text_tokens=48, guidance_scale=3.0, batch_size=64, seed=0, decode_images=False
    )
    for dtype in (torch.float32, torch.bfloat16):
        model, tokenizer = load_shapes_model(None)
        model = model.to(dtype)
        adapter = get_adapter(model, tokenizer)

        def sample(batch_size, model=model, adapter=adapter):
            samples = generate_samples(
                model,
                adapter,
                prompts,
                args.samples,
                dataclasses.replace(config, batch_size=batch_size),
                progress=False,
            )
            return [(s.reasoning_ids, s.image_tokens) for s in samples]

        first = sample(64)
        for label, batch_size in (("rerun, batch 64", 64), ("batch 7", 7), ("batch 1", 1)):
            other = sample(batch_size)
            differing = sum(a != b for a, b in zip(first, other))
            print(f"{dtype!s:<15} {label:<16} {differing} of {len(first)} samples differ", flush=True)


if __name__ == "__main__":
    main()
