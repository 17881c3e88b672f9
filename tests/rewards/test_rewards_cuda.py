"""On a GPU, rewards must place inputs on the model's device and cast pixel values to its dtype."""

import math

import pytest
import torch

from trl_unified.rewards import CLIPScoreReward, ReasoningFaithfulnessReward, VQAScoreReward

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

PROMPTS = ["a red circle", "two blue squares left of a green triangle", "draw"]
REASONING = ["first draw a red circle", "two", "then draw three green squares above the circle"]


@pytest.mark.parametrize(
    "make, dir_fixture, tol",
    [
        (CLIPScoreReward, "clip_dir", 0.05),
        (VQAScoreReward, "llava_dir", 0.02),
        (ReasoningFaithfulnessReward, "judge_dir", 0.02),
    ],
)
def test_cuda_fp32_matches_cpu_and_bf16_is_close(make, dir_fixture, tol, request, images):
    path = request.getfixturevalue(dir_fixture)
    cpu = make(path, device="cpu")(PROMPTS, REASONING, images)
    gpu = make(path, device="cuda")
    assert gpu.model.device.type == "cuda"
    assert gpu(PROMPTS, REASONING, images) == pytest.approx(cpu, rel=1e-3, abs=1e-5)
    half = make(path, device="cuda", dtype=torch.bfloat16)
    assert half.model.dtype == torch.bfloat16
    scores = half(PROMPTS, REASONING, images)
    assert all(isinstance(s, float) and math.isfinite(s) for s in scores)
    assert scores == pytest.approx(cpu, abs=tol)
