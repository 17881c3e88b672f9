"""LoRA: save/reload gives identical logits, resume continues the same run, push_to_hub with a model card."""

import pytest
import torch
from datasets import Dataset
from peft import LoraConfig, PeftModel

from tests.sample_rows import make_rows
from trl_unified import RewardWeightedMultimodalConfig, RewardWeightedMultimodalTrainer
from trl_unified.testing.causal_lm import tiny_causal_lm


def lora_trainer(tmp_path, max_steps=4, **kwargs):
    model, tokenizer = tiny_causal_lm(seed=7)
    args = RewardWeightedMultimodalConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=2,
        max_steps=max_steps,
        learning_rate=5e-2,
        report_to="none",
        use_cpu=True,
        logging_steps=1,
        seed=0,
        data_seed=0,
        disable_tqdm=True,
        save_strategy="steps",
        save_steps=2,
        lr_scheduler_type="constant",
        **kwargs,
    )
    trainer = RewardWeightedMultimodalTrainer(
        model,
        args=args,
        train_dataset=Dataset.from_list(make_rows(8)),
        processing_class=tokenizer,
        peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=None),
    )
    return trainer, tokenizer


def lora_state(model):
    return {k: v.detach().clone() for k, v in model.named_parameters() if "lora_" in k}


def test_resume_from_checkpoint_continues_the_same_run(tmp_path):
    straight, _ = lora_trainer(tmp_path / "straight")
    straight.train()
    expected = lora_state(straight.model)
    first, _ = lora_trainer(tmp_path / "resumed", max_steps=2)
    first.train()  # stops at step 2, checkpoint-2 saved
    resumed, _ = lora_trainer(tmp_path / "resumed", max_steps=4)
    resumed.train(resume_from_checkpoint=str(tmp_path / "resumed" / "checkpoint-2"))
    assert resumed.state.global_step == 4
    got = lora_state(resumed.model)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-5, atol=1e-7)
    losses = [e["loss"] for e in straight.state.log_history if "loss" in e]
    resumed_losses = [e["loss"] for e in resumed.state.log_history if "loss" in e]
    assert resumed_losses[-2:] == pytest.approx(losses[-2:], rel=1e-5)


def test_push_adapter_and_model_card_to_local_hub(tmp_path, local_hub):
    trainer, _ = lora_trainer(
        tmp_path / "push", max_steps=1, push_to_hub=True, hub_model_id="test-user/tiny-rwr", hub_strategy="end"
    )
    trainer.args.save_strategy = "no"
    trainer.train()
    trainer.push_to_hub()
    files = local_hub.files("test-user/tiny-rwr")
    assert "adapter_model.safetensors" in files and "adapter_config.json" in files
    card = files["README.md"].decode()
    assert "2601.04339" in card and "trl-unified" in card and "reward-weighted-regression" in card
    base, _ = tiny_causal_lm(seed=7)
    reloaded = PeftModel.from_pretrained(base, "test-user/tiny-rwr")
    pushed = {k.replace(".default", ""): v for k, v in lora_state(trainer.model).items()}
    for key, value in lora_state(reloaded).items():
        torch.testing.assert_close(value, pushed[key.replace(".default", "")])


def test_gradient_checkpointing_with_lora_gives_the_same_loss_and_trains(tmp_path):
    plain, _ = lora_trainer(tmp_path / "plain", max_steps=1)
    checkpointed, _ = lora_trainer(tmp_path / "gc", max_steps=1, gradient_checkpointing=True)
    assert checkpointed.args.gradient_checkpointing_kwargs == {"use_reentrant": False}
    batch = plain.data_collator([plain.train_dataset[i] for i in range(2)])
    checkpointed.model.gradient_checkpointing_enable(checkpointed.args.gradient_checkpointing_kwargs)
    assert checkpointed.model.is_gradient_checkpointing
    checkpointed.model.train()
    loss = checkpointed.compute_loss(checkpointed.model, batch)
    plain.model.train()
    assert loss.item() == pytest.approx(plain.compute_loss(plain.model, batch).item(), rel=1e-6)
    loss.backward()
    assert all(p.grad is not None for n, p in checkpointed.model.named_parameters() if p.requires_grad)
