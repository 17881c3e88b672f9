"""The trainer's loss on Janus and Emu3 equals an independent hand computation of the weighted per-modality CE."""

import pytest
import torch
from sample_rows import make_rows
from datasets import Dataset

from trl_unified import RewardWeightedMultimodalConfig, RewardWeightedMultimodalTrainer
from trl_unified.testing.emu3 import tiny_emu3
from trl_unified.testing.janus import tiny_janus


def janus_logps(model, adapter, batch):
    """Independent Janus path: embeddings by hand, the Llama language model, then lm_head / generation_head."""
    ids, modality = batch["input_ids"], batch["modality"]
    embeds = []
    for b in range(ids.shape[0]):
        rows = []
        for t in range(ids.shape[1]):
            token = ids[b, t : t + 1]
            if modality[b, t] == 1 and token.item() != adapter.eoi_token_id:
                rows.append(model.prepare_embeddings_for_image_generation(token)[0])
            else:
                rows.append(model.get_input_embeddings()(token)[0])
        embeds.append(torch.stack(rows))
    hidden = model.model.language_model(inputs_embeds=torch.stack(embeds), attention_mask=batch["attention_mask"]).last_hidden_state
    return model.lm_head(hidden).log_softmax(-1), model.model.generation_head(hidden).log_softmax(-1)


def emu3_logps(model, adapter, batch):
    """Independent Emu3 path: the model's own full-vocabulary logits; images on the visual-id slice."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
    return logits.log_softmax(-1), logits[..., adapter.image_token_ids].log_softmax(-1)


FAMILIES = {"janus": (tiny_janus, janus_logps), "emu3": (tiny_emu3, emu3_logps)}


def hand_loss(text_lp, image_lp, batch, text_coef, image_coef):
    labels, modality = batch["labels"][:, 1:], batch["modality"][:, 1:]
    total = 0.0
    for mod, coef, weights, lp in ((0, text_coef, batch["text_weight"], text_lp), (1, image_coef, batch["image_weight"], image_lp)):
        numerator, count = 0.0, 0
        for b in range(labels.shape[0]):
            for t in range(labels.shape[1]):
                if labels[b, t] != -100 and modality[b, t] == mod:
                    numerator += -weights[b].item() * lp[b, t, labels[b, t]].item()
                    count += 1
        total += coef * numerator / max(count, 1)
    return total


def build(family, tmp_path, **kwargs):
    model, processor = FAMILIES[family][0](seed=0)
    probe = RewardWeightedMultimodalTrainer(
        model, args=RewardWeightedMultimodalConfig(str(tmp_path / "probe"), report_to="none", use_cpu=True),
        processing_class=processor,
    ).adapter
    rows = make_rows(4, num_image_tokens=probe.num_image_tokens, codebook_size=probe.codebook_size, text_only={1})
    args = RewardWeightedMultimodalConfig(str(tmp_path / "out"), report_to="none", use_cpu=True, beta=0.3, **kwargs)
    trainer = RewardWeightedMultimodalTrainer(model, args=args, train_dataset=Dataset.from_list(rows), processing_class=processor)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    return trainer, model, batch


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_loss_equals_hand_computation(family, tmp_path):
    trainer, model, batch = build(family, tmp_path, text_loss_weight=0.6, image_loss_weight=1.4)
    model.eval()  # no dropout in either computation
    assert (batch["modality"] == 1).any() and batch["image_weight"].std() > 0.05
    loss = trainer.compute_loss(model, batch).item()
    with torch.no_grad():
        text_lp, image_lp = FAMILIES[family][1](model, trainer.adapter, batch)
    shifted_text, shifted_image = text_lp[:, :-1], image_lp[:, :-1]
    assert loss == pytest.approx(hand_loss(shifted_text, shifted_image, batch, 0.6, 1.4), rel=1e-4)


def test_janus_image_loss_off_sends_no_gradient_to_generation_head(tmp_path):
    trainer, model, batch = build("janus", tmp_path, image_loss_weight=0.0)
    trainer.compute_loss(model, batch).backward()
    head = list(model.model.generation_head.parameters())
    assert all(p.grad is None or p.grad.abs().max() == 0 for p in head)
    assert any(p.grad is not None and p.grad.abs().max() > 0 for p in model.lm_head.parameters())
    model.zero_grad(set_to_none=True)
    trainer.args.image_loss_weight = 1.0
    trainer.compute_loss(model, batch).backward()
    assert any(p.grad is not None and p.grad.abs().max() > 0 for p in head)  # the check above could fail
