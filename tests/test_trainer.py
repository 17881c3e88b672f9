"""The trainer on the generic causal-LM adapter: SFT equivalence, accumulation invariance, errors.

The loss against an independent reference computation, for every family, is in `test_families.py`.
"""

import math

import pytest
import torch
from datasets import Dataset

from tests.sample_rows import make_rows
from trl_unified import RewardWeightedMultimodalConfig, RewardWeightedMultimodalTrainer
from trl_unified.testing.causal_lm import tiny_causal_lm


def config(tmp_path, **kwargs):
    defaults = dict(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=4,
        report_to="none",
        use_cpu=True,
        learning_rate=1e-2,
        logging_steps=1,
        save_strategy="no",
        seed=0,
        data_seed=0,
        disable_tqdm=True,
    )
    return RewardWeightedMultimodalConfig(**{**defaults, **kwargs})


def test_none_weighting_matches_trl_sft_trainer_on_text_rows(tmp_path):
    from trl import SFTConfig, SFTTrainer

    rows = make_rows(4, text_only={0, 1, 2, 3})
    model, tokenizer = tiny_causal_lm(seed=2)
    ours = RewardWeightedMultimodalTrainer(
        model,
        args=config(tmp_path, reward_weighting="none"),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    batch = ours.data_collator([ours.train_dataset[i] for i in range(4)])
    our_loss = ours.compute_loss(ours.model, batch).item()

    # The same token sequences, given to SFT pre-tokenized with a completion mask (prompt masked, EOS trained).
    sft_rows = []
    for row in ours.train_dataset:
        ids = row["prompt_ids"] + row["reasoning_ids"] + [tokenizer.eos_token_id]
        sft_rows.append(
            {
                "input_ids": ids,
                "completion_mask": [0] * len(row["prompt_ids"]) + [1] * (len(ids) - len(row["prompt_ids"])),
            }
        )
    sft_args = SFTConfig(
        output_dir=str(tmp_path / "sft"),
        per_device_train_batch_size=4,
        report_to="none",
        use_cpu=True,
        gradient_checkpointing=False,
        bf16=False,
        completion_only_loss=True,
    )
    sft = SFTTrainer(model=model, args=sft_args, train_dataset=Dataset.from_list(sft_rows), processing_class=tokenizer)
    sft_batch = next(iter(sft.get_train_dataloader()))
    count = (sft_batch["labels"][:, 1:] != -100).sum()
    sft_loss = sft.compute_loss(sft.model, sft._prepare_inputs(sft_batch), num_items_in_batch=count).item()
    assert our_loss == pytest.approx(sft_loss, rel=1e-5)


def test_text_loss_weight_zero_makes_text_rows_contribute_nothing(tmp_path):
    model, tokenizer = tiny_causal_lm(seed=3)
    rows = make_rows(4, text_only={0, 1, 2, 3})
    trainer = RewardWeightedMultimodalTrainer(
        model,
        args=config(tmp_path, text_loss_weight=0.0),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    loss = trainer.compute_loss(trainer.model, batch)
    assert loss.item() == 0.0
    loss.backward()
    assert all(p.grad is None or p.grad.abs().max() == 0 for p in model.parameters())


def _one_step(tmp_path, name, batch_size, accumulation, normalization, rows):
    model, tokenizer = tiny_causal_lm(seed=4)
    args = config(
        tmp_path / name,
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=accumulation,
        max_steps=1,
        optim="sgd",
        learning_rate=1.0,
        lr_scheduler_type="constant",
        loss_normalization=normalization,
        text_loss_weight=0.5,
        max_grad_norm=0.0,
    )
    trainer = RewardWeightedMultimodalTrainer(
        model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer
    )
    trainer.train()
    return {k: v.detach().clone() for k, v in model.named_parameters()}, trainer


@pytest.mark.parametrize("normalization", ["token", "sequence"])
def test_objective_is_independent_of_accumulation(tmp_path, normalization):
    rows = make_rows(4, text_only={1}, seed=5)  # different lengths and weights per row
    initial = {k: v.clone() for k, v in tiny_causal_lm(seed=4)[0].named_parameters()}
    big, _ = _one_step(tmp_path, "4x1", 4, 1, normalization, rows)
    small, trainer = _one_step(tmp_path, "1x4", 1, 4, normalization, rows)
    moved = max((big[k] - initial[k]).abs().max().item() for k in big)
    assert moved > 1e-3  # the step did something
    for key in big:
        torch.testing.assert_close(big[key], small[key], rtol=1e-4, atol=1e-6)
    logged = [entry for entry in trainer.state.log_history if "loss/image" in entry]
    assert logged and "dataset_weights/image_ess" in logged[0] and math.isfinite(logged[0]["loss/image"])
    # the step's window holds every row, so its mean weight is the dataset's: two keys, two computations, one value
    assert logged[0]["weights/image_mean"] == pytest.approx(logged[0]["dataset_weights/image_mean"])


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda rows: [{k: v for k, v in r.items() if k != "image_reward"} for r in rows], r"no column 'image_reward'"),
        (
            lambda rows: [
                {**r, "text_reward": float("nan") if i == 3 else r["text_reward"]} for i, r in enumerate(rows)
            ],
            r"row 3, column 'text_reward'",
        ),
        (
            lambda rows: [
                {**r, "image_reward": float("inf") if i == 1 else r["image_reward"]} for i, r in enumerate(rows)
            ],
            r"row 1, column 'image_reward'",
        ),
        (
            lambda rows: [
                {**r, "image_tokens": r["image_tokens"][:-1] if i == 2 else r["image_tokens"]}
                for i, r in enumerate(rows)
            ],
            r"row 2, column `image_tokens`: expected 16",
        ),
        (
            lambda rows: [
                {**r, "image_tokens": [99] * 16 if i == 4 else r["image_tokens"]} for i, r in enumerate(rows)
            ],
            r"row 4, column `image_tokens`: image codes \[99",
        ),
        (
            lambda rows: [{k: v for k, v in r.items() if k != "prompt"} for r in rows],
            r"needs a `prompt` or `prompt_ids` column",
        ),
    ],
)
def test_bad_input_names_row_and_column(tmp_path, mutate, message):
    model, tokenizer = tiny_causal_lm()
    with pytest.raises(ValueError, match=message):
        RewardWeightedMultimodalTrainer(
            model,
            args=config(tmp_path),
            train_dataset=Dataset.from_list(mutate(make_rows(6))),
            processing_class=tokenizer,
        )


def test_row_longer_than_max_length_is_rejected(tmp_path):
    model, tokenizer = tiny_causal_lm()
    rows = make_rows(4)
    rows[2]["reasoning"] = " ".join(["red"] * 40)
    with pytest.raises(ValueError, match=r"row 2: the sequence is \d+ tokens.*max_length=40"):
        RewardWeightedMultimodalTrainer(
            model,
            args=config(tmp_path, max_length=40),
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
        )


def test_filter_weighting_drops_zero_weight_rows_with_a_count(tmp_path, caplog):
    model, tokenizer = tiny_causal_lm()
    rows = make_rows(8, groups=2)
    for row in rows:
        row["text_reward"] = row["image_reward"]
    args = config(tmp_path, reward_weighting="filter", filter_top_fraction=0.5)
    from transformers.utils import logging as hf_logging

    hf_logging.enable_propagation()
    with caplog.at_level("WARNING"):
        trainer = RewardWeightedMultimodalTrainer(
            model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer
        )
    assert len(trainer.train_dataset) == 4
    assert "dropping 4 of 8 rows" in caplog.text
    assert sorted(trainer.train_dataset["row_index"]) == sorted(
        i
        for g in (0, 1)
        for i in sorted((j for j in range(8) if j % 2 == g), key=lambda j: -rows[j]["image_reward"])[:2]
    )
