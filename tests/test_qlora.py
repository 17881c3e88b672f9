"""QLoRA on CPU (bitsandbytes 4-bit): through the trainer (model loaded by name with a quantization config) and the CLI."""

import json
import subprocess
import sys

import pytest
import torch
from datasets import Dataset
from peft import LoraConfig

from tests.sample_rows import make_rows
from trl_unified import RewardWeightedMultimodalConfig, RewardWeightedMultimodalTrainer
from trl_unified.testing.causal_lm import tiny_causal_lm

bnb = pytest.importorskip("bitsandbytes")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("qlora") / "base"
    model, tokenizer = tiny_causal_lm(seed=0)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path, tokenizer


@pytest.mark.parametrize("gradient_checkpointing", [False, True])
def test_trainer_trains_lora_adapters_on_a_4bit_model(saved, tmp_path, gradient_checkpointing):
    from transformers import BitsAndBytesConfig

    path, tokenizer = saved
    quantization = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_compute_dtype=torch.float32, bnb_4bit_quant_type="nf4"
    )
    args = RewardWeightedMultimodalConfig(
        str(tmp_path / "out"),
        model_init_kwargs={"quantization_config": quantization},
        max_steps=2,
        per_device_train_batch_size=4,
        learning_rate=1e-2,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        gradient_checkpointing=gradient_checkpointing,
        disable_tqdm=True,
    )
    trainer = RewardWeightedMultimodalTrainer(
        str(path),
        args=args,
        train_dataset=Dataset.from_list(make_rows(8, text_only={1})),
        processing_class=tokenizer,
        peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=None),
    )
    model = trainer.model
    quantized = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert quantized and model.get_base_model().is_loaded_in_4bit
    lora = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert lora and all("lora_" in n for n in lora) and all(p.dtype == torch.bfloat16 for p in lora.values())  # as TRL
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    trainer.train()
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e] or [
        trainer.state.log_history[-1]["train_loss"]
    ]
    assert all(torch.isfinite(torch.tensor(losses)))
    after = dict(model.named_parameters())
    assert max((after[n] - p).abs().max().item() for n, p in lora.items()) > 1e-4  # the adapters trained
    assert all(torch.equal(after[n], p) for n, p in frozen.items())  # the 4-bit base did not move
    trainer.save_model(str(tmp_path / "adapter"))
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()


def test_quantized_model_without_adapters_is_refused(saved, tmp_path):
    from transformers import BitsAndBytesConfig

    path, tokenizer = saved
    args = RewardWeightedMultimodalConfig(
        str(tmp_path / "out"),
        model_init_kwargs={"quantization_config": BitsAndBytesConfig(load_in_4bit=True)},
        report_to="none",
        use_cpu=True,
    )
    with pytest.raises(ValueError, match="peft_config"):
        RewardWeightedMultimodalTrainer(str(path), args=args, processing_class=tokenizer)


def test_cli_trains_qlora_with_load_in_4bit(saved, tmp_path):
    path, _ = saved
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(json.dumps(row) for row in make_rows(8)))
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "trl_unified.cli",
        "train",
        "--model_name_or_path",
        str(path),
        "--dataset_name",
        str(data),
        "--output_dir",
        str(out),
        "--use_peft",
        "--load_in_4bit",
        "--lora_r",
        "4",
        "--max_steps",
        "2",
        "--per_device_train_batch_size",
        "4",
        "--report_to",
        "none",
        "--use_cpu",
        "--save_strategy",
        "no",
    ]
    result = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "adapter_model.safetensors").exists()
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(path)
