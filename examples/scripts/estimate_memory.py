# Copyright the trl-unified authors. Licensed under the Apache License, Version 2.0.
"""GPU memory per device for the model states of a training run (weights, gradients, Adam states), per launch config.

    python examples/scripts/estimate_memory.py --model_name_or_path deepseek-community/Janus-Pro-7B --num_gpus 1 8

Only the config is read (the model is built on the meta device, nothing is downloaded but `config.json`). Full
fine-tuning uses DeepSpeed's own estimators (`estimate_zero2_model_states_mem_needs`,
`estimate_zero3_model_states_mem_needs`: 16-bit weights, fp32 master weights, gradients and Adam moments); DDP is
mixed precision with fp32 weights (16 bytes per parameter). LoRA counts the adapter's parameters (the trainer's
default targets, rank `--lora_r`) and keeps the frozen base in bfloat16. NOT included: activations (they grow with
batch size and sequence length; gradient checkpointing cuts them), the CUDA context, fragmentation, and the reward
models loaded during self-generation.
"""

from dataclasses import dataclass, field

import torch
from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs
from peft import LoraConfig, get_peft_model
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText
from trl import TrlParser

from trl_unified.models.registry import adapter_class

GIB = 2**30


@dataclass
class EstimateArguments:
    model_name_or_path: str = field(
        default="deepseek-community/Janus-Pro-1B", metadata={"help": "Hub id or folder with the model's config.json."}
    )
    num_gpus: list[int] = field(default_factory=lambda: [1, 8], metadata={"help": "GPU counts to estimate for."})
    lora_r: int = field(default=32, metadata={"help": "LoRA rank of the LoRA rows."})


def count_parameters(model_name_or_path: str, lora_r: int) -> dict[str, int]:
    """Total, largest-layer and LoRA parameter counts of the model, built on the meta device from its config."""
    config = AutoConfig.from_pretrained(model_name_or_path)
    with torch.device("meta"):
        try:  # Janus, Emu3
            model = AutoModelForImageTextToText.from_config(config)
        except ValueError:  # a causal LM with image codes in its vocabulary
            model = AutoModelForCausalLM.from_config(config)
    total = sum({id(p): p.numel() for p in model.parameters()}.values())  # tied weights once
    largest = max(sum(p.numel() for p in module.parameters(recurse=False)) for module in model.modules())
    lora = LoraConfig(r=lora_r, target_modules=adapter_class(model).lora_target_modules)
    trainable = sum(p.numel() for p in get_peft_model(model, lora).parameters() if p.requires_grad)
    return {"total": total, "largest_layer": largest, "lora": trainable}


def estimates(params: dict[str, int], num_gpus: int) -> dict[str, tuple[float, float]]:
    """GiB per GPU, (full fine-tuning, LoRA), for each shipped launch config."""
    n, largest, t = params["total"], params["largest_layer"], params["lora"]
    frozen_bf16 = 2 * n  # the base model in bfloat16 (LoRA)
    lora_states = 16 * t  # fp32 LoRA weights, gradients and two Adam moments
    _, zero2 = estimate_zero2_model_states_mem_needs(n, num_gpus, 1, cpu_offload=False)
    _, zero3, _ = estimate_zero3_model_states_mem_needs(n, largest, num_gpus, 1, cpu_offload=False)
    _, offload, _ = estimate_zero3_model_states_mem_needs(n, largest, num_gpus, 1, cpu_offload=True)
    rows = {
        "single_gpu / multi_gpu (DDP)": (16 * n, frozen_bf16 + lora_states),
        "deepspeed_zero2": (zero2, frozen_bf16 + 2 * t + 18 * t / num_gpus),
        "deepspeed_zero3": (zero3, 4 * largest + (frozen_bf16 + lora_states) / num_gpus),
        "deepspeed_zero3_offload": (offload, 4 * largest),
    }
    return {name: (full / GIB, lora / GIB) for name, (full, lora) in rows.items()}


def main(args):
    params = count_parameters(args.model_name_or_path, args.lora_r)
    print(
        f"{args.model_name_or_path}: {params['total'] / 1e9:.2f}B parameters (largest layer "
        f"{params['largest_layer'] / 1e6:.0f}M), LoRA r={args.lora_r}: {params['lora'] / 1e6:.1f}M trainable"
    )
    header = " | ".join(f"{g} GPU{'s' if g > 1 else ''}: full / LoRA" for g in args.num_gpus)
    print(f"| config | {header} |\n| --- |{' --- |' * len(args.num_gpus)}")
    table = {g: estimates(params, g) for g in args.num_gpus}
    for name in table[args.num_gpus[0]]:
        cells = " | ".join(f"{table[g][name][0]:.1f} / {table[g][name][1]:.1f} GiB" for g in args.num_gpus)
        print(f"| {name} | {cells} |")
    return params, table


if __name__ == "__main__":
    (estimate_args,) = TrlParser((EstimateArguments,)).parse_args_and_config()
    main(estimate_args)
