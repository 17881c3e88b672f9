"""Repeatable and verifiable training (issue #15): LoRA runs repeat bit for bit with the same seed, and a resume
checks the checkpoint it loads (missing optimizer/scheduler state, flipped bits, corrupt files are errors naming the
file)."""

import json
import logging
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from peft import LoraConfig

from tests.sample_rows import make_rows
from trl_unified import RewardWeightedMultimodalConfig, RewardWeightedMultimodalTrainer
from trl_unified.testing.causal_lm import tiny_causal_lm
from trl_unified.trainer.checkpoints import CHECKSUM_FILE, verify_checkpoint


def config(tmp_path, **kwargs):
    defaults = {
        "output_dir": str(tmp_path / "out"), "per_device_train_batch_size": 4, "report_to": "none", "use_cpu": True,
        "learning_rate": 1e-2, "save_strategy": "no", "seed": 0, "disable_tqdm": True, "max_steps": 2,
    }  # fmt: skip
    return RewardWeightedMultimodalConfig(**{**defaults, **kwargs})


def lora_run(tmp_path, name, seed=0, steps=2):
    model, tokenizer = tiny_causal_lm(seed=0)
    torch.manual_seed(1234 + len(name))  # whatever came before: the trainer's seed must decide the adapter
    trainer = RewardWeightedMultimodalTrainer(
        model, args=config(tmp_path / name, seed=seed, max_steps=steps), train_dataset=Dataset.from_list(make_rows(8)),
        processing_class=tokenizer, peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=None),
    )  # fmt: skip
    initial = {k: v.detach().clone() for k, v in trainer.model.named_parameters() if "lora_" in k}
    trainer.train()
    final = {k: v.detach().clone() for k, v in trainer.model.named_parameters() if "lora_" in k}
    return initial, final


def test_lora_runs_repeat_bit_for_bit_with_the_same_seed(tmp_path):
    init_a, final_a = lora_run(tmp_path, "a")
    init_b, final_b = lora_run(tmp_path, "bb")
    assert init_a.keys() == final_a.keys() and init_a
    assert all(torch.equal(init_a[k], init_b[k]) for k in init_a)
    assert all(torch.equal(final_a[k], final_b[k]) for k in final_a)
    init_c, _ = lora_run(tmp_path, "c", seed=1, steps=0)
    assert any(not torch.equal(init_a[k], init_c[k]) for k in init_a)  # the seed does decide it


@pytest.fixture
def checkpoint(tmp_path):
    """A 2-step run with a checkpoint at step 1 (full fine-tuning, safetensors), and a function to resume it."""
    rows = Dataset.from_list(make_rows(8))

    def make(**options):
        model, tokenizer = tiny_causal_lm(seed=0)
        args = config(tmp_path, save_strategy="steps", save_steps=1, max_steps=2, **options)
        return RewardWeightedMultimodalTrainer(model, args=args, train_dataset=rows, processing_class=tokenizer)

    make().train()
    folder = Path(tmp_path / "out" / "checkpoint-1")
    assert (folder / CHECKSUM_FILE).exists()
    return folder, make


def test_an_intact_checkpoint_resumes(checkpoint):
    folder, make = checkpoint
    verify_checkpoint(folder)
    trainer = make()
    trainer.train(resume_from_checkpoint=str(folder))
    assert trainer.state.global_step == 2


@pytest.mark.parametrize("name", ["scheduler.pt", "optimizer.pt"])
def test_missing_optimizer_or_scheduler_state_is_an_error_unless_asked(checkpoint, caplog, name):
    folder, make = checkpoint
    (folder / name).unlink()
    with pytest.raises(ValueError, match=rf"checkpoint {folder} has no {name}"):
        make().train(resume_from_checkpoint=str(folder))
    with caplog.at_level(logging.WARNING):
        trainer = make(resume_allow_missing_state=True)
        trainer.train(resume_from_checkpoint=str(folder))
    assert trainer.state.global_step == 2 and "resuming without that state" in caplog.text


def test_a_bit_flip_in_the_weights_names_the_file(checkpoint):
    folder, make = checkpoint
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x40  # an exponent bit of a float near the end: the value becomes huge, the file still loads
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"checkpoint file {weights} is corrupt"):
        make().train(resume_from_checkpoint=str(folder))


def test_corrupt_safetensors_without_checksums_names_the_file(checkpoint):
    folder, make = checkpoint
    (folder / CHECKSUM_FILE).unlink()  # as saved by another trainer
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ValueError, match=rf"checkpoint file {weights} is corrupt or not a safetensors file"):
        make().train(resume_from_checkpoint=str(folder))


def test_a_checkpoint_file_listed_but_missing_is_an_error(checkpoint):
    folder, _ = checkpoint
    listed = json.loads((folder / CHECKSUM_FILE).read_text())["sha256"]
    assert "model.safetensors" in listed and "trainer_state.json" in listed
    (folder / "trainer_state.json").unlink()
    with pytest.raises(ValueError, match="trainer_state.json"):
        verify_checkpoint(folder)
    with pytest.raises(ValueError, match="no such folder"):
        verify_checkpoint(folder.parent / "checkpoint-99")
