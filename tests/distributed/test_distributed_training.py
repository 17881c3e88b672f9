"""2 CPU processes (torchrun, gloo) train exactly like 1 process with the same global batch, for every family, under
DDP, DeepSpeed ZeRO-2 and ZeRO-3 (with CPU offload, with zero3_init_flag), full fine-tuning and LoRA, with the
Trainer's default arguments; micro-batches without images and a switched-off image loss included.

One torchrun launch per strategy runs all its cases (tests/distributed/cases.py); the 1-process references are
trained here. The saved model or adapter is reloaded and compared, parameters and log-probs, with the reference.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from tests.distributed.cases import BUILDERS, Case, build, cases, make_trainer, probe_batch
from tests.distributed.launch import torchrun_two_processes
from trl_unified.models.registry import get_adapter

STRATEGIES = ["ddp", "zero2", "zero3", "zero3_offload", "zero3_init"]
LOSS_KEYS = ("loss", "loss/text", "loss/image")
#: Largest 2-vs-1-process differences, per strategy and case (printed with `pytest -s`; docs/scaling.md quotes them).
MEASURED: dict[str, dict[str, float]] = {}


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("base")
    for family in BUILDERS:
        model, processor = build(family)
        model.save_pretrained(path / family)
        processor.save_pretrained(path / family)
    return path


@pytest.fixture(scope="module")
def references(base_dir, tmp_path_factory):
    """1-process runs, by case name: (trainer, probe batch); trained on first use."""
    cache: dict[str, tuple] = {}

    def get(case: Case):
        if case.name not in cache:
            trainer = make_trainer(case, str(tmp_path_factory.mktemp(case.name)), 1, str(base_dir / case.family))
            trainer.train()
            cache[case.name] = trainer, probe_batch(case, trainer)
        return cache[case.name]

    return get


def launch(strategy: str, base_dir: Path, out_dir: Path) -> None:
    torchrun_two_processes("train_worker.py", strategy, str(base_dir), str(out_dir))


def reload(case: Case, path: Path, base_dir: Path):
    adapter_class = type(get_adapter(*build(case.family)))
    if case.kind.startswith("lora"):
        from peft import PeftModel

        return PeftModel.from_pretrained(build(case.family)[0], str(path))
    return adapter_class.model_class.from_pretrained(str(path))


def logps(trainer, model, batch):
    model.eval()
    with torch.no_grad():
        return trainer.adapter.token_logps(
            model, batch["input_ids"], batch["attention_mask"], batch["modality"], batch["labels"]
        )


@pytest.mark.slow
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_two_processes_train_like_one(strategy, base_dir, references, tmp_path):
    launch(strategy, base_dir, tmp_path)
    for case in cases(strategy):
        reference, batch = references(case)
        worst = MEASURED.setdefault(f"{strategy} {case.name}", {"loss_rel": 0.0, "param_abs": 0.0, "logp_abs": 0.0})
        ranks = [json.loads((tmp_path / case.name / f"rank{r}.json").read_text()) for r in (0, 1)]

        # Micro-batches without any image position happened, while the other process had one (the DDP-hang case).
        flags = list(zip(ranks[0]["image_in_micro_batch"], ranks[1]["image_in_micro_batch"]))
        assert len(flags) == 3 * case.accumulation
        if case.kind != "image_off":
            assert any(a != b for a, b in flags), flags

        # Logged losses, total and per modality (gathered over processes), equal the 1-process run's.
        ours = [entry for entry in ranks[0]["log_history"] if "loss" in entry]
        theirs = [entry for entry in reference.state.log_history if "loss" in entry]
        assert [e["step"] for e in ours] == [e["step"] for e in theirs] == [1, 2, 3]
        for mine, ref in zip(ours, theirs):
            assert {k for k in LOSS_KEYS if k in mine} == {k for k in LOSS_KEYS if k in ref}
            for key in LOSS_KEYS:
                if key in ref:
                    assert mine[key] == pytest.approx(ref[key], rel=1e-4), (case.name, key)
                    worst["loss_rel"] = max(worst["loss_rel"], abs(mine[key] - ref[key]) / max(abs(ref[key]), 1e-12))
        assert ranks[1]["log_history"][:3] == ranks[0]["log_history"][:3]

        # The saved model (or adapter) reloads with the reference's trained weights and log-probs.
        loaded = reload(case, tmp_path / case.name / "model", base_dir)
        trained = dict(reference.model.named_parameters())
        initial = dict(build(case.family)[0].named_parameters())
        compared = 0
        for name, parameter in loaded.named_parameters():
            if case.kind.startswith("lora") and "lora_" not in name:
                continue
            expected = trained[name]
            torch.testing.assert_close(
                parameter, expected, rtol=1e-4, atol=2e-5, msg=lambda m, where=f"{case.name} {name}": f"{where}: {m}"
            )
            worst["param_abs"] = max(worst["param_abs"], (parameter - expected).abs().max().item())
            compared += 1
        assert compared > 0
        if not case.kind.startswith("lora"):
            moved = max((trained[n] - initial[n]).abs().max().item() for n in initial)
            worst["moved"] = moved
            assert moved > 1e-3  # the steps did something (compared above at 2e-5)
        got, want = logps(reference, loaded, batch), logps(reference, reference.model, batch)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
        worst["logp_abs"] = max(worst["logp_abs"], (got - want).abs().max().item())
    lines = [
        f"{key} " + " ".join(f"{k}={v:.1e}" for k, v in values.items())
        for key, values in MEASURED.items()
        if key.startswith(f"{strategy} ")
    ]
    print("\n" + "\n".join(lines))
    if os.environ.get("SCALING_REPORT"):  # docs/scaling.md's table comes from here
        with open(os.environ["SCALING_REPORT"], "a") as f:
            f.write("\n".join(lines) + "\n")
