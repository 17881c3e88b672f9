"""The trainer on every model family (shaped like TRL's `test_sft_trainer.py`): one `family` fixture, one independent
reference computation of the loss, and the training, save/load and gradient checks parametrised over it."""

import pytest
import torch
from datasets import Dataset
from peft import LoraConfig, PeftModel

from tests.sample_rows import make_rows
from trl_unified import RewardWeightedMultimodalConfig, RewardWeightedMultimodalTrainer
from trl_unified.models.base import IGNORE_INDEX, IMAGE, TEXT
from trl_unified.testing.families import FAMILIES, tiny_model


@pytest.fixture(params=sorted(FAMILIES))
def family(request):
    return request.param


# ----- the independent reference: each family's own modules, called by hand -----------------------------------------
def janus_logps(model, adapter, batch):
    """Janus: embeddings by hand (codes through the generation embeddings + aligner), the Llama language model, then
    `lm_head` for text and `generation_head` for images."""
    ids, modality = batch["input_ids"], batch["modality"]
    embeds = []
    for b in range(ids.shape[0]):
        rows = []
        for t in range(ids.shape[1]):
            token = ids[b, t : t + 1]
            if modality[b, t] == IMAGE and token.item() != adapter.eoi_token_id:
                rows.append(model.prepare_embeddings_for_image_generation(token)[0])
            else:
                rows.append(model.get_input_embeddings()(token)[0])
        embeds.append(torch.stack(rows))
    hidden = model.model.language_model(
        inputs_embeds=torch.stack(embeds), attention_mask=batch["attention_mask"]
    ).last_hidden_state
    return model.lm_head(hidden).log_softmax(-1), model.model.generation_head(hidden).log_softmax(-1)


def shared_vocabulary_logps(model, adapter, batch):
    """Causal LM and Emu3: the model's own full-vocabulary logits; images on the slice of the code ids."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
    return logits.log_softmax(-1), logits[..., adapter.image_token_ids].log_softmax(-1)


REFERENCE_LOGPS = {"causal_lm": shared_vocabulary_logps, "emu3": shared_vocabulary_logps, "janus": janus_logps}


def reference_loss(family, model, adapter, batch, text_coef, image_coef, normalization="token"):
    """`sum_m coef_m * sum_i w_i,m * CE_i,m / N_m`, token by token in Python (see docs/trainer.md)."""
    with torch.no_grad():
        text_lp, image_lp = (lp[:, :-1] for lp in REFERENCE_LOGPS[family](model, adapter, batch))
    labels, modality = batch["labels"][:, 1:], batch["modality"][:, 1:]
    total = 0.0
    for mod, coef, weights, lp in (
        (TEXT, text_coef, batch["text_weight"], text_lp),
        (IMAGE, image_coef, batch["image_weight"], image_lp),
    ):
        numerator, count = 0.0, 0
        for b in range(labels.shape[0]):
            positions = [t for t in range(labels.shape[1]) if labels[b, t] != IGNORE_INDEX and modality[b, t] == mod]
            ce = [-lp[b, t, labels[b, t]].item() for t in positions]
            if not ce:
                continue
            if normalization == "token":
                numerator, count = numerator + weights[b].item() * sum(ce), count + len(ce)
            else:
                numerator, count = numerator + weights[b].item() * sum(ce) / len(ce), count + 1
        total += coef * numerator / max(count, 1)
    return total


# ----- helpers ---------------------------------------------------------------------------------------------------------
def make_trainer(family, tmp_path, *, rows=6, peft_config=None, seed=0, **kwargs):
    model, processor = tiny_model(family, seed=seed)
    adapter_probe = RewardWeightedMultimodalTrainer(
        model,
        args=RewardWeightedMultimodalConfig(str(tmp_path / "probe"), report_to="none", use_cpu=True),
        processing_class=processor,
    ).adapter
    data = make_rows(
        rows,
        num_image_tokens=adapter_probe.num_image_tokens,
        codebook_size=adapter_probe.codebook_size,
        text_only={1},
    )
    defaults = dict(
        per_device_train_batch_size=2, report_to="none", use_cpu=True, learning_rate=5e-2, logging_steps=1,
        save_strategy="no", seed=0, data_seed=0, disable_tqdm=True, beta=0.3, lr_scheduler_type="constant",
    )  # fmt: skip
    args = RewardWeightedMultimodalConfig(str(tmp_path / "out"), **{**defaults, **kwargs})
    trainer = RewardWeightedMultimodalTrainer(
        model, args=args, train_dataset=Dataset.from_list(data), processing_class=processor, peft_config=peft_config
    )
    return trainer, model, processor


def first_batch(trainer, size):
    return trainer.data_collator([trainer.train_dataset[i] for i in range(size)])


# ----- tests ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("normalization", ["token", "sequence"])
def test_loss_equals_the_reference_computation(family, normalization, tmp_path):
    trainer, model, _ = make_trainer(
        family, tmp_path, text_loss_weight=0.6, image_loss_weight=1.4, loss_normalization=normalization
    )
    model.eval()  # no dropout in either computation
    batch = first_batch(trainer, 4)
    assert (batch["modality"] == IMAGE).any() and batch["image_weight"].std() > 0.05  # rewards really weight samples
    loss = trainer.compute_loss(model, batch).item()
    expected = reference_loss(family, model, trainer.adapter, batch, 0.6, 1.4, normalization)
    assert loss == pytest.approx(expected, rel=1e-4)


def test_lora_trains_saves_and_reloads_identically(family, tmp_path):
    trainer, _, _ = make_trainer(family, tmp_path, max_steps=2, peft_config=LoraConfig(r=4, lora_alpha=8))
    trained = [name for name, p in trainer.model.named_parameters() if p.requires_grad]
    assert trained and all("lora_" in name for name in trained)
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.train()
    assert any((p - before[name]).abs().max() > 0 for name, p in trainer.model.named_parameters() if name in before)
    trainer.save_model(str(tmp_path / "adapter"))
    batch = first_batch(trainer, 4)
    trainer.model.eval()
    with torch.no_grad():
        expected = trainer.adapter.token_logps(
            trainer.model, batch["input_ids"], batch["attention_mask"], batch["modality"], batch["labels"]
        )
    base, _ = tiny_model(family, seed=0)
    reloaded = PeftModel.from_pretrained(base, str(tmp_path / "adapter")).eval()
    with torch.no_grad():
        got = trainer.adapter.token_logps(
            reloaded, batch["input_ids"], batch["attention_mask"], batch["modality"], batch["labels"]
        )
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_full_fine_tuning_saves_and_reloads_identically(family, tmp_path):
    trainer, model, _ = make_trainer(family, tmp_path, max_steps=2)
    before = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    trainer.train()
    assert any((p - before[name]).abs().max() > 0 for name, p in model.named_parameters() if name in before)
    trainer.save_model(str(tmp_path / "saved"))
    reloaded = type(model).from_pretrained(str(tmp_path / "saved")).eval()
    model.eval()
    for (name, expected), (_, got) in zip(model.state_dict().items(), reloaded.state_dict().items()):
        torch.testing.assert_close(got, expected, rtol=0, atol=0, msg=name)


def test_janus_image_loss_off_sends_no_gradient_to_its_generation_head(tmp_path):
    """With `image_loss_weight=0` the image loss adds nothing: Janus's generation head (used by image positions only)
    gets a zero gradient (it is still touched, as DDP needs); the text head still learns. With the loss on, it learns."""
    trainer, model, _ = make_trainer("janus", tmp_path, image_loss_weight=0.0)
    batch = first_batch(trainer, 4)
    trainer.compute_loss(model, batch).backward()
    head = list(model.model.generation_head.parameters())
    assert all(p.grad is None or p.grad.abs().max() == 0 for p in head)
    assert any(p.grad is not None and p.grad.abs().max() > 0 for p in model.lm_head.parameters())
    model.zero_grad(set_to_none=True)
    trainer.args.image_loss_weight = 1.0
    trainer.compute_loss(model, batch).backward()
    assert any(p.grad is not None and p.grad.abs().max() > 0 for p in head)  # the check above could fail
