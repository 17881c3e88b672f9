"""Bad input fails early and clearly (issue #15): the config checks every option in `__post_init__`, the CLI prints
one line and exits with 2 (a traceback only with --debug), and the data path checks every row up front."""

import json
import logging
import math

import pytest
from datasets import Dataset

from tests.sample_rows import make_rows
from trl_unified import RewardWeightedMultimodalConfig, RewardWeightedMultimodalTrainer
from trl_unified.cli import main
from trl_unified.testing.causal_lm import tiny_causal_lm

NAN, INF = float("nan"), float("inf")


def config(tmp_path, **kwargs):
    defaults = {
        "output_dir": str(tmp_path / "out"), "per_device_train_batch_size": 4, "report_to": "none", "use_cpu": True,
        "save_strategy": "no", "seed": 0, "disable_tqdm": True,
    }  # fmt: skip
    return RewardWeightedMultimodalConfig(**{**defaults, **kwargs})


# ----- the config -----------------------------------------------------------------------------------------------------
BAD_OPTIONS = [
    ({"text_loss_weight": NAN}, "text_loss_weight must be a finite number"),
    ({"image_loss_weight": INF}, "image_loss_weight must be a finite number"),
    ({"text_loss_weight": -1.0}, "text_loss_weight must be >= 0"),
    ({"text_loss_weight": 0.0, "image_loss_weight": 0.0}, "both 0"),
    ({"max_weight": -1.0}, "max_weight must be > 0"),
    ({"max_weight": 0.0}, "max_weight must be > 0"),
    ({"max_weight": NAN}, "max_weight must be a finite number"),
    ({"beta": 0.0}, "beta must be > 0"),
    ({"beta": NAN}, "beta must be a finite number"),
    ({"reward_weighting": "foo"}, "reward_weighting must be one of"),
    ({"weight_normalization": "foo"}, "weight_normalization must be one of"),
    ({"loss_normalization": "foo"}, "loss_normalization must be one of"),
    ({"reward_weighting": "filter"}, "needs filter_top_fraction"),
    ({"reward_weighting": "filter", "filter_top_fraction": 0.0}, r"filter_top_fraction must be in \(0, 1\]"),
    ({"reward_weighting": "filter", "filter_top_fraction": 1.5}, r"filter_top_fraction must be in \(0, 1\]"),
    ({"reward_weighting": "filter", "filter_threshold": NAN}, "filter_threshold must be a finite number"),
    ({"per_device_train_batch_size": 0}, "per_device_train_batch_size must be a positive integer"),
    ({"per_device_eval_batch_size": -2}, "per_device_eval_batch_size must be a positive integer"),
    ({"gradient_accumulation_steps": 0}, "gradient_accumulation_steps must be a positive integer"),
    ({"max_length": 0}, "max_length must be a positive integer"),
    ({"dataset_num_proc": 0}, "dataset_num_proc must be a positive integer"),
    ({"learning_rate": NAN}, "learning_rate must be a finite number"),
    ({"text_reward_column": ""}, "text_reward_column must be a column name"),
]


@pytest.mark.parametrize("options,message", BAD_OPTIONS, ids=[str(o) for o, _ in BAD_OPTIONS])
def test_config_refuses_bad_options(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        config(tmp_path, **options)


def test_config_parses_model_init_kwargs_from_json(tmp_path):
    assert config(tmp_path, model_init_kwargs='{"dtype": "float32"}').model_init_kwargs == {"dtype": "float32"}
    with pytest.raises(ValueError, match="model_init_kwargs must be a dict"):
        config(tmp_path, model_init_kwargs="dtype=float32")


# ----- the command line -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_checks")
    model, tokenizer = tiny_causal_lm(seed=0)
    model.save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    (root / "data.jsonl").write_text("\n".join(json.dumps(row) for row in make_rows(8)))
    return root


def train_args(root, *extra):
    return ["train", "--model_name_or_path", str(root / "model"), "--dataset_name", str(root / "data.jsonl"),
            "--output_dir", str(root / "out"), "--report_to", "none", "--use_cpu", "--max_steps", "1",
            "--save_strategy", "no", *extra]  # fmt: skip


def one_line_error(capsys, argv, match):
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse's own errors (an invalid choice): status 2 as well
        status = exit_.code
    assert status == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("trl-unified")]
    assert len(lines) == 1 and "error:" in lines[0], err
    assert match in err, err
    return err


CLI_CASES = [
    (["--text_loss_weight", "nan"], "text_loss_weight must be a finite number"),
    (["--max_weight", "-1"], "max_weight must be > 0"),
    (["--per_device_train_batch_size", "0"], "per_device_train_batch_size must be a positive integer"),
    (["--reward_weighting", "softmax", "--weight_normalization", "foo"], "invalid choice: 'foo'"),
    (["--dataset_test_split", "nope"], "no split 'nope'"),
    (["--dataset_test_split", "train"], "dataset_test_split is the training split"),
    (["--model_adapter", "janus"], "model_adapter 'janus' reads 'janus' checkpoints"),
    (["--model_adapter", "nope"], "Unknown model_adapter 'nope'"),
]


@pytest.mark.parametrize("extra,match", CLI_CASES, ids=[" ".join(e) for e, _ in CLI_CASES])
def test_train_cli_bad_input_is_one_line_and_exit_2(saved, capsys, extra, match):
    one_line_error(capsys, train_args(saved, *extra), match)


def test_train_cli_wrong_paths(saved, capsys, tmp_path):
    argv = train_args(saved)
    argv[2] = str(tmp_path / "no_model")
    one_line_error(capsys, argv, "no such folder")
    argv = train_args(saved)
    argv[4] = str(tmp_path / "none.jsonl")
    one_line_error(capsys, argv, "no such file")


def test_debug_shows_the_traceback(saved):
    with pytest.raises(ValueError, match="max_weight"):
        main(train_args(saved, "--max_weight", "-1", "--debug"))


def test_generate_cli_checks_before_loading(saved, capsys, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red dot\n")
    base = ["generate", "--model_name_or_path", str(saved / "model"), "--prompts", str(prompts)]
    one_line_error(capsys, base + ["--output_dir", str(tmp_path / "o")], "no rewards")
    one_line_error(capsys, base + ["--output_dir", str(saved / "model"), "--no_rewards"], "holds no trl-unified run")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(bytes(range(256)))
    argv = ["generate", "--model_name_or_path", str(saved / "model"), "--prompts", str(binary), "--no_rewards",
            "--output_dir", str(tmp_path / "o")]  # fmt: skip
    one_line_error(capsys, argv, f"{binary} is not UTF-8 text")
    one_line_error(capsys, base + ["--output_dir", str(tmp_path / "o"), "--no_rewards", "--dtype", "half"], "dtype")


@pytest.mark.parametrize("extra,match", [(["--batch_size", "0"], "batch_size"), (["--reward_weighting", "foo"], "foo")])
def test_demo_checks_options_at_once(capsys, tmp_path, extra, match):
    one_line_error(capsys, ["demo", "--output_dir", str(tmp_path), *extra], match)
    assert not any(tmp_path.iterdir())  # nothing was started


# ----- rows -----------------------------------------------------------------------------------------------------------
@pytest.fixture
def lm():
    return tiny_causal_lm(seed=0)


def trainer_for(tmp_path, lm, rows, **options):
    model, tokenizer = lm
    dataset = rows if isinstance(rows, Dataset) else Dataset.from_list(rows)
    return RewardWeightedMultimodalTrainer(
        model, args=config(tmp_path, **options), train_dataset=dataset, processing_class=tokenizer
    )


def with_row(index, **changes):
    """Six good rows, one of them changed (every row gets the changed keys: `from_list` reads the first row's keys)."""
    rows = make_rows(6)
    defaults = {"prompt_ids": [1, 2, 3], "reasoning_ids": [4, 5]}
    for row in rows:
        row.update({key: defaults[key] for key in changes if key in defaults})
    rows[index].update(changes)
    return rows


def every_row(**changes):
    return [{**row, **changes} for row in make_rows(6)]


BAD_ROWS = [
    (with_row(3, image_tokens=[1.7] + [0] * 15), r"row 3, column 'image_tokens': 1.7 is not an integer"),
    (with_row(2, image_tokens=[9] + [0] * 15), r"row 2, column `image_tokens`: image codes \[9\] are outside"),
    (with_row(1, image_tokens=[0] * 5), r"row 1, column `image_tokens`: expected 16 image codes"),
    (with_row(4, prompt_ids=[1, 2, 999]), r"row 4, column 'prompt_ids': token id 999 is outside the model's vocab"),
    (with_row(0, reasoning_ids=[-1]), r"row 0, column 'reasoning_ids': token id -1 is outside"),
    (with_row(5, text_reward=NAN), r"row 5, column 'text_reward': reward must be a finite number"),
    (with_row(2, prompt=None), r"row 2, column 'prompt': expected text"),
    (every_row(reasoning=7), r"row 0, column 'reasoning': expected text"),
    (every_row(image_tokens="abc"), r"row 0, column 'image_tokens': expected a list of integers"),
]


@pytest.mark.parametrize("rows,message", BAD_ROWS, ids=[m.split(":")[0] for _, m in BAD_ROWS])
def test_bad_rows_are_named_up_front(tmp_path, lm, rows, message):
    with pytest.raises(ValueError, match=message):
        trainer_for(tmp_path, lm, rows)


def test_integer_valued_float_codes_are_accepted(tmp_path, lm):
    rows = with_row(0, image_tokens=[float(c) for c in make_rows(6)[0]["image_tokens"]])
    trainer = trainer_for(tmp_path, lm, rows)
    assert trainer.train_dataset[0]["image_tokens"] == [int(c) for c in rows[0]["image_tokens"]]


def test_empty_dataset_is_an_error(tmp_path, lm):
    empty = Dataset.from_list(make_rows(2)).select([])
    with pytest.raises(ValueError, match="The train dataset has no rows"):
        trainer_for(tmp_path, lm, empty)


def test_drop_failed_rewards_drops_with_a_count(tmp_path, lm, caplog):
    rows = make_rows(6)
    for i in (1, 4):
        rows[i]["image_reward"] = NAN
    for row in rows:
        row["reward_failed"] = False
    rows[2]["reward_failed"] = True
    with caplog.at_level(logging.WARNING):
        trainer = trainer_for(tmp_path, lm, rows, drop_failed_rewards=True)
    assert sorted(trainer.train_dataset["row_index"]) == [0, 3, 5]
    assert "dropping 3 of 6 rows whose reward failed" in caplog.text
    trainer.train()
    assert all(math.isfinite(p.detach().sum().item()) for p in trainer.model.parameters())
