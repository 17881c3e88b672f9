"""Model-state memory per GPU for Janus-Pro-1B/7B and Emu3-Gen under ZeRO-2/3, from DeepSpeed's own estimators.

    python benchmarks/zero_memory.py

Each model is built on the meta device (no weights, no download) from its published architecture values (typed
below from the checkpoints' config.json), its parameters counted (total, trainable = without the frozen VQ model
and, for Janus, the understanding vision tower and aligner, largest layer), and the counts passed to
`estimate_zero2_model_states_mem_needs` / `estimate_zero3_model_states_mem_needs` (mixed precision with Adam:
16 bytes per trained parameter, split by the stage; activations, the frozen parts' 2 bytes per parameter and
temporary buffers come on top).
"""

from __future__ import annotations

import torch
from transformers import Emu3Config, Emu3ForConditionalGeneration, JanusConfig, JanusForConditionalGeneration

GIB = 2**30


def janus_config(hidden: int, intermediate: int, layers: int, heads: int) -> JanusConfig:
    return JanusConfig(
        text_config={"model_type": "llama", "hidden_size": hidden, "intermediate_size": intermediate,
                     "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": heads,
                     "vocab_size": 102400, "max_position_embeddings": 16384},
        vision_config={"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
                       "intermediate_size": 4096, "image_size": 384, "patch_size": 16, "projection_dim": hidden,
                       "depth": 2, "num_image_tokens": 576},
        vq_config={"embed_dim": 8, "num_embeddings": 16384, "base_channels": 128,
                   "channel_multiplier": [1, 1, 2, 2, 4], "num_res_blocks": 2, "projection_dim": hidden,
                   "image_token_embed_dim": 2048, "num_patches": 24},
    )  # fmt: skip


MODELS = {
    "Janus-Pro-1B": (JanusForConditionalGeneration, lambda: janus_config(2048, 5632, 24, 16)),
    "Janus-Pro-7B": (JanusForConditionalGeneration, lambda: janus_config(4096, 11008, 30, 32)),
    "Emu3-Gen": (
        Emu3ForConditionalGeneration,
        lambda: Emu3Config(
            text_config={
                "vocab_size": 184622,
                "hidden_size": 4096,
                "intermediate_size": 14336,
                "num_hidden_layers": 32,
                "num_attention_heads": 32,
                "num_key_value_heads": 8,
                "max_position_embeddings": 9216,
            },
            vq_config={
                "codebook_size": 32768,
                "embed_dim": 4,
                "latent_channels": 4,
                "base_channels": 256,
                "channel_multiplier": [1, 2, 2, 4],
                "num_res_blocks": 2,
            },
            vocabulary_map={"<|extra_200|>": 151846},  # the real map names 32768 visual ids; no parameters depend on it
        ),
    ),
}
FROZEN = {"Janus-Pro-1B": ("vqmodel", "vision_model", "aligner"), "Janus-Pro-7B": ("vqmodel", "vision_model", "aligner"),
          "Emu3-Gen": ("vqmodel",)}  # fmt: skip


def counts(name: str) -> tuple[int, int, int, int]:
    """Total, trained (full fine-tuning) and largest-layer parameters, and those in 4-bit-quantizable linear layers
    (bitsandbytes quantizes every ``nn.Linear`` but the output heads)."""
    model_class, config = MODELS[name]
    with torch.device("meta"):
        model = model_class(config())
    total = sum(p.numel() for p in model.parameters())
    frozen = sum(p.numel() for n, p in model.named_parameters() if any(f".{part}." in f".{n}" for part in FROZEN[name]))
    largest = max(sum(p.numel() for p in m.parameters(recurse=False)) for m in model.modules())
    linear = sum(
        m.weight.numel() for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and "head" not in n
    )
    return total, total - frozen, largest, linear


def main() -> None:
    import io
    from contextlib import redirect_stdout

    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

    print("| model | params (trained) | GPUs | ZeRO-2 | ZeRO-2 + opt. offload | ZeRO-3 | ZeRO-3 + offload |")
    print("|---|---|---|---|---|---|---|")
    adapters = []
    for name in MODELS:
        total, trained, largest, linear = counts(name)
        adapters.append(f"| {name} | {2 * total / GIB:.1f} GiB | {(linear / 2 + 2 * (total - linear)) / GIB:.1f} GiB |")
        for gpus in (1, 8):
            with redirect_stdout(io.StringIO()):
                z2 = estimate_zero2_model_states_mem_needs(trained, gpus, 1, cpu_offload=False)[1]
                z2o = estimate_zero2_model_states_mem_needs(trained, gpus, 1, cpu_offload=True)[1]
                z3 = estimate_zero3_model_states_mem_needs(
                    trained, largest, gpus, 1, cpu_offload=False, cpu_offload_params=False
                )[1]
                z3o = estimate_zero3_model_states_mem_needs(
                    trained, largest, gpus, 1, cpu_offload=True, cpu_offload_params=True
                )[1]
            frozen = 2 * (total - trained)  # bf16 copy of the frozen parts, on every GPU (ZeRO-3: partitioned too)
            cells = [
                f"{(z2 + frozen) / GIB:.1f}",
                f"{(z2o + frozen) / GIB:.1f}",
                f"{(z3 + frozen / gpus) / GIB:.1f}",
                f"{z3o / GIB:.1f}",
            ]
            print(
                f"| {name} | {total / 1e9:.2f}B ({trained / 1e9:.2f}B) | {gpus} | "
                + " | ".join(c + " GiB" for c in cells)
                + " |"
            )
    print("\nLoRA / QLoRA, weights per GPU (bf16 base; 4-bit linear layers at 0.5 byte per weight, the rest bf16):\n")
    print("| model | LoRA (bf16 base) | QLoRA (4-bit base) |")
    print("|---|---|---|")
    print("\n".join(adapters))


if __name__ == "__main__":
    main()
