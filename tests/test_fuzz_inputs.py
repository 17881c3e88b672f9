"""Fuzz: random bad rows and options, through the user's path (a JSONL file -> `load_any_dataset` -> config -> trainer
-> one training step). Each case must end in a clear error (a `ValueError` naming the row, the column, the option or
the file) or a correct result (finite loss, finite parameters), never an exception from torch, datasets or pyarrow,
never a NaN model. The tally of outcomes is printed (run with -s)."""

import json
import math
import os
import random
from collections import Counter

import torch

from tests.sample_rows import make_rows
from trl_unified import RewardWeightedMultimodalConfig, RewardWeightedMultimodalTrainer
from trl_unified.data.loading import load_any_dataset
from trl_unified.testing.causal_lm import tiny_causal_lm

NAN, INF = float("nan"), float("inf")
CASES = int(os.environ.get("FUZZ_CASES", "60"))  # more: FUZZ_CASES=500 FUZZ_SEED=1

# column -> values a careless pipeline could write there
ROW_VALUES = {
    "image_tokens": [[1.7] + [0] * 15, [-1] + [0] * 15, [8] + [0] * 15, ["x"] * 16, [0] * 3, [0] * 40, None, [], 5],
    "prompt": [None, 5, "", "x" * 3000],
    "reasoning": [None, "", 7, "plan " * 400],
    "text_reward": [NAN, INF, None, "high", 1e308, -1e308, 0.5],
    "image_reward": [NAN, -INF, None, [1.0], 1e300],
    "prompt_id": [None, "a", 3.5],
    "prompt_ids": [[10**6], [-5], [1.5], [], [1, 2]],
    "reasoning_ids": [[10**6], [2.5], None, [3]],
}
OPTION_VALUES = {
    "beta": [0.0, -1.0, NAN, INF, 1e-300, 1e300, 0.5],
    "max_weight": [-1.0, 0.0, NAN, 1e-9, None, 3.0],
    "text_loss_weight": [NAN, INF, -1.0, 0.0, 2.0],
    "image_loss_weight": [NAN, -0.5, 0.0, 1e-8],
    "reward_weighting": ["foo", "filter", "softmax", "rank", "none", "exp"],
    "weight_normalization": ["foo", "group", "none"],
    "filter_top_fraction": [0.0, 2.0, NAN, 0.5],
    "filter_threshold": [NAN, 0.5, 10.0],
    "max_length": [0, 1, 5, 10**6],
    "per_device_train_batch_size": [0, -1, 1, 100],
    "loss_normalization": ["sequence", "foo"],
    "text_reward_column": [None, "missing"],
    "drop_failed_rewards": [True],
}
#: the words a clear message names what is at fault with
CLEAR = ("row ", "column", "dataset", "rows", "weights", ".jsonl") + tuple(OPTION_VALUES)


def make_case(rng):
    rows = make_rows(rng.choice([0, 1, 4, 8]), seed=rng.randrange(100))
    touched = rng.sample(sorted(ROW_VALUES), rng.randint(0, 2))
    for column in touched:
        value = rng.choice(ROW_VALUES[column])
        targets = range(len(rows)) if rng.random() < 0.3 else [rng.randrange(len(rows))] if rows else []
        for i in targets:
            rows[i][column] = value
    options = {name: rng.choice(OPTION_VALUES[name]) for name in rng.sample(sorted(OPTION_VALUES), rng.randint(0, 2))}
    return rows, options, touched


def run_case(tmp_path, index, rows, options):
    path = tmp_path / f"case{index}.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    try:
        dataset = load_any_dataset(str(path))
        args = RewardWeightedMultimodalConfig(
            output_dir=str(tmp_path / f"out{index}"), report_to="none", use_cpu=True, save_strategy="no",
            max_steps=1, disable_tqdm=True, seed=0, **{"per_device_train_batch_size": 4, **options},
        )  # fmt: skip
        model, tokenizer = tiny_causal_lm(seed=0)
        trainer = RewardWeightedMultimodalTrainer(model, args=args, train_dataset=dataset, processing_class=tokenizer)
        trainer.train()
    except ValueError as error:
        message = str(error)
        assert any(word in message for word in CLEAR), f"unclear: {message}"
        return "clear error"
    losses = [entry["train_loss"] for entry in trainer.state.log_history if "train_loss" in entry]
    assert losses and all(math.isfinite(loss) for loss in losses), losses
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters()), "NaN model"
    return "trained (finite)"


def test_random_bad_rows_and_options(tmp_path):
    rng = random.Random(int(os.environ.get("FUZZ_SEED", "15")))
    outcomes, failures = Counter(), []
    for index in range(CASES):
        rows, options, touched = make_case(rng)
        try:
            outcomes[run_case(tmp_path, index, rows, options)] += 1
        except Exception as error:  # noqa: BLE001 - collected, to report every failing case at once
            failures.append(f"case {index} (columns {touched}, options {options}): {type(error).__name__}: {error}")
    print(f"\nfuzz: {CASES} cases: {dict(outcomes)}")
    assert not failures, "\n".join(failures)
