"""Issue #10: RWR that cannot silently go wrong, on the trainer with the generic causal-LM adapter.

Overflowing exp weights, text-only rows in the image weighting, constant groups, None group ids, a user's own weight
columns, `filter` = SFT on the kept samples, sources, and the weight checks made before training.
"""

import math

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers.utils import logging as hf_logging

from tests.sample_rows import make_rows
from trl_unified import RewardWeightedMultimodalConfig, RewardWeightedMultimodalTrainer
from trl_unified.testing.causal_lm import tiny_causal_lm


def config(tmp_path, **kwargs):
    defaults = {
        "output_dir": str(tmp_path / "out"),
        "per_device_train_batch_size": 4,
        "report_to": "none",
        "use_cpu": True,
        "learning_rate": 1e-2,
        "logging_steps": 1,
        "save_strategy": "no",
        "seed": 0,
        "data_seed": 0,
        "disable_tqdm": True,
    }
    return RewardWeightedMultimodalConfig(**{**defaults, **kwargs})


def build(tmp_path, rows, seed=0, **kwargs):
    model, tokenizer = tiny_causal_lm(seed=seed)
    args = config(tmp_path, **kwargs)
    return RewardWeightedMultimodalTrainer(
        model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer
    )


def weights_by_row(trainer, modality):
    return dict(zip(trainer.train_dataset["row_index"], trainer.train_dataset[f"{modality}_weight"]))


def full_batch_loss(trainer):
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(trainer.train_dataset))])
    return trainer.compute_loss(trainer.model, batch).item()


@pytest.fixture
def caplog_hf(caplog):
    hf_logging.enable_propagation()
    with caplog.at_level("WARNING"):
        yield caplog


# ----- exp overflow --------------------------------------------------------------------------------------------------
def test_large_rewards_over_a_small_beta_train_a_finite_model(tmp_path):
    rows = make_rows(4, groups=1)
    for row, reward in zip(rows, [0.0, 30.0, 100.0, 80.0]):
        row["text_reward"] = row["image_reward"] = reward
    trainer = build(tmp_path, rows, beta=0.05, max_steps=1)
    assert np.isfinite(trainer.train_dataset["image_weight"]).all()
    assert max(trainer.train_dataset["image_weight"]) == pytest.approx(4.0)  # 4 * softmax: the best row has it all
    trainer.train()
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    train_loss = trainer.state.log_history[-1]["train_loss"]
    assert math.isfinite(train_loss) and train_loss > 0


# ----- text-only and image-only rows ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "scheme", [{"reward_weighting": "exp", "beta": 0.3}, {"reward_weighting": "filter", "filter_top_fraction": 0.5}]
)
def test_text_only_rows_take_no_part_in_the_image_weighting(tmp_path, scheme):
    text_only = {1, 2, 5}
    image_weights = []
    for placeholder in (0.0, 1.0, None):
        rows = make_rows(8, text_only=text_only, groups=2, seed=1)
        for i in text_only:
            rows[i]["image_reward"] = placeholder
        trainer = build(tmp_path / str(placeholder), rows, **scheme)
        weights = weights_by_row(trainer, "image")
        image_weights.append({i: w for i, w in weights.items() if i not in text_only})
        assert all(weights[i] == 0 for i in text_only if i in weights)  # no image: no image weight
        assert trainer.weight_stats["image"].rows == 5
    assert image_weights[0] == image_weights[1] == image_weights[2]
    if scheme["reward_weighting"] == "exp":
        assert np.mean(list(image_weights[0].values())) == pytest.approx(1.0)  # the image rows' weights average 1
    else:  # group 0 has image rows 0, 4, 6 -> ceil(1.5) = 2 kept; group 1 has 3, 7 -> 1 kept: no slot for a text row
        rows = make_rows(8, text_only=text_only, groups=2, seed=1)
        expected = {
            i
            for g, k in ((0, 2), (1, 1))
            for i in sorted((j for j in (0, 3, 4, 6, 7) if j % 2 == g), key=lambda j: -rows[j]["image_reward"])[:k]
        }
        assert {i for i, w in image_weights[0].items() if w == 1} == expected


def test_a_none_reward_is_refused_where_the_row_has_that_modality(tmp_path):
    rows = make_rows(6)
    rows[4]["image_reward"] = None
    with pytest.raises(ValueError, match=r"row 4, column 'image_reward'.*None marks a row without an image; this row"):
        build(tmp_path, rows)
    rows = make_rows(6)
    rows[3]["text_reward"] = None
    with pytest.raises(ValueError, match=r"row 3, column 'text_reward'.*this row has reasoning"):
        build(tmp_path, rows)


def test_an_image_only_row_with_no_text_reward_trains_only_its_image(tmp_path):
    rows = make_rows(6, seed=2)
    rows[3]["reasoning"], rows[3]["text_reward"] = "", None
    trainer = build(tmp_path, rows, beta=0.5)
    text, image = weights_by_row(trainer, "text"), weights_by_row(trainer, "image")
    assert text[3] == 0 and image[3] > 0 and trainer.weight_stats["text"].rows == 5
    others = [text[i] for i in range(6) if i != 3]
    assert np.mean(others) == pytest.approx(1.0)  # the text weighting is over the other 5 rows
    position = trainer.train_dataset["row_index"].index(3)
    batch = trainer.data_collator([trainer.train_dataset[position]])
    trained = batch["labels"][0] != -100
    assert trained.any() and (batch["modality"][0][trained] == 1).all()  # its begin-of-image (text) is not trained


# ----- constant groups -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("keep", [False, True])
def test_constant_groups_get_no_weight_unless_kept(tmp_path, caplog_hf, keep):
    rows = make_rows(8, groups=2, seed=3)
    for row in rows[0::2]:  # group 0 (rows 0, 2, 4, 6): four failures
        row["image_reward"] = row["text_reward"] = 0.0
    trainer = build(tmp_path, rows, weight_normalization="group", keep_constant_groups=keep, max_steps=1)
    weights = weights_by_row(trainer, "image")
    if keep:
        assert all(weights[i] == pytest.approx(1.0) for i in (0, 2, 4, 6))
        assert "1 of 2 groups have equal image rewards (no contrast): kept, weight 1" in caplog_hf.text
    else:
        assert sorted(weights) == [1, 3, 5, 7]  # the failures' rows were dropped (weight 0 in both modalities)
        assert "1 of 2 groups have equal image rewards (no contrast): weight 0" in caplog_hf.text
        assert "dropping 4 of 8 rows" in caplog_hf.text
    assert trainer.weight_stats["image"].constant_groups == 1
    trainer.train()
    logged = next(entry for entry in trainer.state.log_history if "dataset_weights/image_constant_groups" in entry)
    assert logged["dataset_weights/image_constant_groups"] == 1 and logged["dataset_weights/text_constant_groups"] == 1


def test_none_group_ids_are_refused(tmp_path):
    rows = make_rows(6)
    rows[2]["prompt_id"] = None
    with pytest.raises(ValueError, match=r"row 2, column 'prompt_id': the group id is None"):
        build(tmp_path, rows, weight_normalization="group")


# ----- a user's own weight columns ----------------------------------------------------------------------------------
def test_precomputed_weight_columns_are_used_with_none_and_refused_otherwise(tmp_path):
    rows = make_rows(6, text_only={5}, seed=4)
    for i, row in enumerate(rows):
        row["text_weight"], row["image_weight"] = 0.5 + i, (None if i == 5 else 2.0 - 0.25 * i)
    with pytest.raises(ValueError, match=r"has a `text_weight` column.*reward_weighting='none'"):
        build(tmp_path, rows)
    trainer = build(tmp_path, rows, reward_weighting="none")
    assert trainer.train_dataset["text_weight"] == [0.5 + i for i in range(6)]
    assert trainer.train_dataset["image_weight"] == [2.0 - 0.25 * i for i in range(5)] + [0.0]
    rows[1]["image_weight"] = -1.0
    with pytest.raises(ValueError, match=r"1 of 5 image weights are not finite numbers >= 0 \(row 1: -1.0\)"):
        build(tmp_path, rows, reward_weighting="none")


# ----- filter = SFT on the kept samples -------------------------------------------------------------------------------
def _top_half(rows, column, candidates, groups=2):
    """The rows `filter_top_fraction=0.5` keeps, computed by hand: the best ceil(K/2) of each group."""
    kept = set()
    for g in range(groups):
        members = sorted((j for j in candidates if j % groups == g), key=lambda j: -rows[j][column])
        kept |= set(members[: math.ceil(len(members) / 2)])
    return kept


def test_filter_is_sft_on_the_kept_images(tmp_path):
    """Filtering images only (text weight 1) must take exactly the same step as SFT on the kept rows' images."""
    rows = make_rows(8, groups=2, seed=5)
    kept = _top_half(rows, "image_reward", range(8))
    common = {
        "per_device_train_batch_size": 8,
        "max_steps": 1,
        "optim": "sgd",
        "learning_rate": 1.0,
        "lr_scheduler_type": "constant",
        "max_grad_norm": 0.0,
        "text_loss_weight": 0.0,
    }
    filtered = build(
        tmp_path / "filter",
        rows,
        seed=6,
        reward_weighting="filter",
        filter_top_fraction=0.5,
        text_reward_column=None,
        **common,
    )
    sft = build(tmp_path / "sft", [rows[i] for i in sorted(kept)], seed=6, reward_weighting="none", **common)
    initial = {k: v.clone() for k, v in filtered.model.named_parameters()}
    filtered.train()
    sft.train()
    assert max((p - initial[k]).abs().max().item() for k, p in filtered.model.named_parameters()) > 1e-3
    for (name, a), (_, b) in zip(filtered.model.named_parameters(), sft.model.named_parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=name)


def test_filter_on_both_modalities_is_sft_on_each_modalitys_kept_samples(tmp_path):
    rows = make_rows(8, groups=2, text_only={2}, seed=7)
    text_kept = _top_half(rows, "text_reward", range(8))
    image_kept = _top_half(rows, "image_reward", [i for i in range(8) if i != 2])
    assert text_kept != image_kept  # rows kept for one modality only: the case that used to be mis-normalised
    model, tokenizer = tiny_causal_lm(seed=8)

    def trainer(subset, **kwargs):
        args = config(tmp_path, **{"text_loss_weight": 0.7, "image_loss_weight": 1.3, **kwargs})
        dataset = Dataset.from_list([rows[i] for i in subset])
        return RewardWeightedMultimodalTrainer(model, args=args, train_dataset=dataset, processing_class=tokenizer)

    filtered = full_batch_loss(trainer(range(8), reward_weighting="filter", filter_top_fraction=0.5))
    text_sft = full_batch_loss(trainer(sorted(text_kept), reward_weighting="none", image_loss_weight=0.0))
    image_sft = full_batch_loss(trainer(sorted(image_kept), reward_weighting="none", text_loss_weight=0.0))
    assert filtered == pytest.approx(text_sft + image_sft, rel=1e-5)


# ----- sources -------------------------------------------------------------------------------------------------------
def test_sources_are_weighted_separately_and_reported(tmp_path):
    rows = make_rows(12, groups=3, seed=9)
    for i, row in enumerate(rows):
        row["source"] = "targeted" if i < 6 else "broad"
        if i >= 6:  # the broad source's reward is on another scale
            row["image_reward"] = 10 * row["image_reward"] + 5
    trainer = build(tmp_path, rows, source_column="source", beta=0.5, max_steps=1)
    weights = np.array(trainer.train_dataset["image_weight"])
    assert weights[:6].mean() == pytest.approx(1.0) and weights[6:].mean() == pytest.approx(1.0)
    assert set(trainer.source_weight_stats) == {"targeted", "broad"}
    assert trainer.source_weight_stats["broad"]["image"].rows == 6
    trainer.train()
    logged = next(entry for entry in trainer.state.log_history if "dataset_weights/image_ess" in entry)
    assert (
        logged["dataset_weights/targeted/image_mean"] == pytest.approx(1.0)
        and "dataset_weights/broad/text_ess" in logged
    )
    trainer.save_model()
    card = (tmp_path / "out" / "README.md").read_text()
    assert "Weights per source (`source`" in card
    assert "| targeted | image | 6 |" in card and "| broad | text | 6 |" in card

    # groups are nested in sources: the same prompt_id in two sources is two groups
    grouped = build(tmp_path / "g", rows, source_column="source", reward_weighting="filter", filter_top_fraction=0.5)
    # 1 kept of each (source, prompt) group of 2
    assert len(grouped.train_dataset) < 12 and sum(grouped.train_dataset["image_weight"]) == 6

    rows[7]["source"] = None
    with pytest.raises(ValueError, match=r"row 7, column 'source': the source id is None"):
        build(tmp_path, rows, source_column="source")


# ----- checks before training ----------------------------------------------------------------------------------------
def test_non_finite_weights_are_refused_with_rows_named(tmp_path):
    rows = make_rows(4, groups=1)
    for row, reward in zip(rows, [0.0, 30.0, 100.0, 80.0]):
        row["text_reward"] = row["image_reward"] = reward
    message = r"train: 1 of 4 text weights are not finite numbers >= 0 \(row 2: inf\).*beta=0.05"
    with pytest.raises(ValueError, match=message):
        build(tmp_path, rows, beta=0.05, weight_normalization="none", max_weight=None)


def test_all_zero_weights_are_refused(tmp_path):
    rows = make_rows(6)
    with pytest.raises(ValueError, match=r"train: all 6 image weights are 0 .*filter_threshold=2.0"):
        build(tmp_path, rows, reward_weighting="filter", filter_threshold=2.0, text_reward_column=None)
    # a modality switched off may have zero weights
    build(
        tmp_path, rows, reward_weighting="filter", filter_threshold=2.0, text_reward_column=None, image_loss_weight=0.0
    )


def test_a_small_effective_sample_size_warns_with_the_number(tmp_path, caplog_hf):
    rows = make_rows(8, groups=2, seed=10)
    for i, row in enumerate(rows):
        row["image_reward"] = float(i)
    build(tmp_path, rows, beta=0.2)  # weights ~ exp(5 i): row 7 carries almost all of the image loss
    z = np.exp(5.0 * np.arange(8))
    ess = z.sum() ** 2 / (z**2).sum() / 8  # 0.127: above the default threshold 0.1, so no warning ...
    assert "the image weights have an effective sample size" not in caplog_hf.text
    caplog_hf.clear()
    build(tmp_path, rows, beta=0.2, min_effective_sample_size=0.5)  # ... but below 0.5
    assert (
        f"train: the image weights have an effective sample size of {ess:.3g} of their 8 rows ({8 * ess:.1f} "
        "rows), "
        "below min_effective_sample_size=0.5"
    ) in caplog_hf.text


def test_config_checks_the_new_fields():
    with pytest.raises(ValueError, match="min_effective_sample_size"):
        RewardWeightedMultimodalConfig("x", min_effective_sample_size=2.0, report_to="none")
    with pytest.raises(ValueError, match="filter_top_fraction"):
        RewardWeightedMultimodalConfig("x", reward_weighting="filter", filter_top_fraction=1.5, report_to="none")
