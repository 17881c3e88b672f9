"""Sampling and self-generation from a DeepSpeed ZeRO-3 engine on 2 CPU processes give the unsharded model's tokens
at the same seed, with processes doing unequal work (no hang), and leave the engine trainable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.distributed.gen_cases import PROMPTS, build, sampling_config, self_generation_config
from tests.distributed.launch import torchrun_two_processes
from trl_unified.generation.sampler import generate_samples
from trl_unified.generation.self_generation import self_generate
from trl_unified.models.registry import get_adapter
from trl_unified.testing.families import FAMILIES


@pytest.fixture(scope="module")
def launched(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("zero3_generation")
    torchrun_two_processes("generate_worker.py", str(out))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_zero3_sampling_and_self_generation_equal_the_unsharded_model(family, launched, tmp_path):
    model, processor = build(family)
    adapter = get_adapter(model, processor)
    for rank in (0, 1):
        result = json.loads((launched / family / f"rank{rank}.json").read_text())
        prompts = PROMPTS[: 1 + 2 * rank]
        expected = generate_samples(
            model, adapter, prompts, num_samples=2, config=sampling_config(family), progress=False
        )
        assert len(result["samples"]) == len(expected) == 2 * len(prompts)
        for got, want in zip(result["samples"], expected):
            assert got == {"reasoning_ids": want.reasoning_ids, "image_tokens": want.image_tokens}
        assert torch.isfinite(torch.tensor(result["loss_after"]))
        assert "pass the engine" in result["refused"]

    reference = self_generate(model, processor, PROMPTS, self_generation_config(str(tmp_path / "selfgen")))
    from datasets import load_from_disk

    sharded = load_from_disk(str(launched / family / "selfgen"))
    assert len(sharded) == len(reference) == 2 * len(PROMPTS)
    for column in ("prompt", "reasoning", "image_tokens", "seed"):
        assert sharded[column] == reference[column], column
