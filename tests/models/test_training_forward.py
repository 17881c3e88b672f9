"""The training forward (backbone and every head inside `model.forward`, as DDP/DeepSpeed wrap it)."""

import pytest
import torch
from peft import LoraConfig, get_peft_model

from trl_unified.data.collator import DataCollatorForInterleavedSequences
from trl_unified.models.base import IMAGE, TEXT, ModalityLosses, install_training_forward
from trl_unified.models.registry import get_adapter
from trl_unified.testing.causal_lm import tiny_causal_lm
from trl_unified.testing.emu3 import tiny_emu3
from trl_unified.testing.janus import tiny_janus


def batch_for(adapter, images=(True, False)):
    rows = [
        {
            "prompt": "red dot",
            "reasoning": "plan : left",
            "image_tokens": [i % adapter.codebook_size for i in range(adapter.num_image_tokens)] if image else None,
        }
        for image in images
    ]
    return DataCollatorForInterleavedSequences(adapter)(rows)


@pytest.mark.parametrize("builder", [tiny_causal_lm, tiny_emu3])
def test_image_logps_go_through_a_lora_layer_on_the_shared_vocabulary_head(builder):
    model, processor = builder(seed=0)
    adapter = get_adapter(model, processor)
    torch.manual_seed(0)
    targets = f"{adapter.lora_target_modules}|(?:.*\\.)?lm_head"
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=targets, init_lora_weights=False)).eval()
    batch = batch_for(adapter)
    with torch.no_grad():
        logps = adapter.token_logps(
            peft_model, batch["input_ids"], batch["attention_mask"], batch["modality"], batch["labels"]
        )
        logits = peft_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].float()
        with peft_model.disable_adapter():
            base_logits = peft_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[
                :, :-1
            ]
    labels, modality = batch["labels"][:, 1:], batch["modality"][:, 1:]
    image = (labels != -100) & (modality == IMAGE)
    text = (labels != -100) & (modality == TEXT)
    ids = torch.tensor(adapter.image_token_ids)
    codes, words = torch.where(image, labels, 0).unsqueeze(-1), torch.where(text, labels, 0).unsqueeze(-1)
    expected_image = logits[..., ids].log_softmax(-1).gather(-1, codes).squeeze(-1)
    expected_text = logits.log_softmax(-1).gather(-1, words).squeeze(-1)
    torch.testing.assert_close(logps[image], expected_image[image], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(logps[text], expected_text[text], rtol=1e-5, atol=1e-5)
    base_image = base_logits[..., ids].float().log_softmax(-1).gather(-1, codes).squeeze(-1)
    assert (base_image[image] - expected_image[image]).abs().max() > 1e-3  # the LoRA layer really changes them


@pytest.mark.parametrize("builder", [tiny_causal_lm, tiny_janus, tiny_emu3])
def test_training_forward_returns_per_sample_losses_and_touches_every_head(builder):
    model, processor = builder(seed=0)
    adapter = get_adapter(model, processor)
    install_training_forward(model, adapter)
    install_training_forward(model, adapter)  # idempotent
    model.train()
    batch = batch_for(adapter, images=(False, False))  # no image row at all
    out = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        labels=batch["labels"],
        modality=batch["modality"],
    )
    assert isinstance(out, ModalityLosses) and out.loss_sum.shape == out.count.shape == (2, 2)
    assert out.count[:, IMAGE].sum() == 0 and (out.count[:, TEXT] > 0).all()
    logps = adapter.token_logps(model, batch["input_ids"], batch["attention_mask"], batch["modality"], batch["labels"])
    torch.testing.assert_close(out.loss_sum[:, TEXT], -logps.sum(dim=1))
    out.loss_sum.sum().backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    frozen = {id(p) for m in adapter.frozen_modules(model) for p in m.parameters()}
    # Every parameter outside the frozen parts has a gradient (zero for the image head), as DDP and ZeRO expect.
    missing = [n for n, p in trainable if p.grad is None and id(p) not in frozen]
    assert not missing, missing[:5]
    # Without `modality` it is the model's own forward.
    plain = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    assert plain.logits.shape[:2] == batch["input_ids"].shape


def test_training_forward_survives_a_deep_copy_and_accelerate_unwrapping():
    import copy
    from types import MethodType

    from accelerate.utils import convert_outputs_to_fp32, extract_model_from_parallel

    model, tokenizer = tiny_causal_lm(seed=0)
    adapter = get_adapter(model, tokenizer)
    install_training_forward(model, adapter)
    batch = batch_for(adapter)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "labels", "modality")}
    with torch.no_grad():
        before = model(**inputs).loss_sum
        twin = copy.deepcopy(model)
        twin.lm_head.weight.mul_(2)  # the copy computes with its own weights
        assert (twin(**inputs).loss_sum - before).abs().max() > 1e-3
        torch.testing.assert_close(model(**inputs).loss_sum, before)
        # accelerate's mixed-precision wrapper, then unwrapping with keep_fp32_wrapper=False (what Trainer saving does)
        model._original_forward = model.forward
        model.forward = MethodType(
            convert_outputs_to_fp32(torch.autocast("cpu", enabled=False)(model.forward.__func__)), model
        )
        torch.testing.assert_close(model(**inputs).loss_sum, before)
        extract_model_from_parallel(model, keep_fp32_wrapper=False)
        torch.testing.assert_close(model(**inputs).loss_sum, before)
