"""`trl-unified ablate`: the study's arms, tables and verdicts (`trl_unified.study`)."""

import json
import math
import subprocess
import sys
from collections import Counter

import pytest

from trl_unified.evaluation import EvalResult, load_evaluation
from trl_unified.study import FINDINGS, StudyConfig, StudyWorld, study_table
from trl_unified.study.arms import ARM_NAMES, select_arms
from trl_unified.targeting import build_pool


def _result(name: str, mode: str, correct: dict[str, list[bool]], switched: float = 0.0) -> EvalResult:
    rows = []
    for category, verdicts in correct.items():
        for i, ok in enumerate(verdicts):
            rows.append({
                "prompt": f"{category} {i}", "category": category, "mode": mode, "score": float(ok),
                "correct": ok, "switched": mode == "unified" and i < switched * len(verdicts),
                "reasoning_tokens": 3, "text_reward": 0.5, "rewards": {}, "reward_errors": None,
            })  # fmt: skip
    return EvalResult.from_rows(name, mode, rows, "score", 0.5)


def test_table_means_spreads_and_verdicts_from_known_results():
    def evals(rwr_hits: int, sft_hits: int) -> dict[str, EvalResult]:
        return {
            "base_unified": _result("base_unified", "unified", {"a": [False] * 100, "b": [False] * 100}),
            "rwr_unified": _result(
                "rwr_unified",
                "unified",
                {"a": [True] * rwr_hits + [False] * (100 - rwr_hits), "b": [True] * 100},
                switched=1.0,
            ),  # fmt: skip
            "sft_unified": _result(
                "sft_unified", "unified", {"a": [True] * sft_hits + [False] * (100 - sft_hits), "b": [True] * 100}
            ),
        }

    table = study_table({0: evals(80, 20), 1: evals(60, 40)}, ["a", "b"])
    row = table.rows["rwr_unified"]
    assert row["accuracy"]["a"].values == [0.8, 0.6] and row["accuracy"]["a"].mean == pytest.approx(0.7)
    assert row["accuracy"]["a"].std == pytest.approx(math.sqrt(0.02))
    assert row["mean_accuracy"].values == [pytest.approx(0.9), pytest.approx(0.8)]
    one = next(f for f in table.findings if f["number"] == 1)
    (pair,) = one["pairs"]  # only rwr vs sft was evaluated
    assert (pair["baseline"], pair["other"]) == ("rwr_unified", "sft_unified")
    assert pair["differences"] == [pytest.approx(0.3), pytest.approx(0.1)] and pair["seeds_ahead"] == 2
    # pooled over seeds: 340/400 vs 260/400 correct, a clear difference
    assert pair["pooled_difference"] == pytest.approx(0.2) and pair["pooled_interval"][0] > 0
    # but two seeds that far apart leave the claim inside the seed spread: t(1) interval 0.2 +- 12.706 * 0.1
    assert pair["seed_interval"] == [pytest.approx(0.2 - 1.2706, abs=1e-3), pytest.approx(0.2 + 1.2706, abs=1e-3)]
    assert pair["verdict"] == "within the seed spread"
    four = next(f for f in table.findings if f["number"] == 4)
    assert four["pairs"][0]["differences"] == [1.0, 1.0] and four["pairs"][0]["verdict"] == "holds"
    markdown = table.to_markdown()
    assert "| rwr_unified | 70.0 ± 14.1 | 100.0 ± 0.0 | 85.0 ± 7.1 | 100.0 ± 0.0 | 50.0 ± 0.0 | 0.0 ± 0.0 |" in markdown
    assert (
        "| rwr_unified vs sft_unified | +20.0 ± 14.1 | 2/2 |" in markdown and "| within the seed spread |" in markdown
    )


def test_a_reversed_and_a_noisy_difference_are_called_so():
    def evals(rwr: int, sft: int) -> dict[str, EvalResult]:
        return {
            "rwr_unified": _result("rwr_unified", "unified", {"a": [True] * rwr + [False] * (50 - rwr)}),
            "sft_unified": _result("sft_unified", "unified", {"a": [True] * sft + [False] * (50 - sft)}),
        }

    holds = study_table({0: evals(40, 10), 1: evals(41, 10), 2: evals(39, 10)}, ["a"]).findings[0]["pairs"][0]
    assert holds["verdict"] == "holds" and holds["seed_interval"][0] > 0
    reversed_ = study_table({0: evals(10, 40), 1: evals(12, 38)}, ["a"]).findings[0]["pairs"][0]
    noisy = study_table({0: evals(25, 24), 1: evals(24, 26)}, ["a"]).findings[0]["pairs"][0]
    assert reversed_["verdict"] == "reversed" and reversed_["pooled_interval"][1] < 0
    assert (
        noisy["verdict"] == "within the seed spread" and noisy["pooled_interval"][0] < 0 < noisy["pooled_interval"][1]
    )
    # pooled samples say "better" (200 samples a side), but the seeds disagree: the verdict follows the seeds
    spread = study_table({0: evals(40, 10), 1: evals(10, 38)}, ["a"]).findings[0]["pairs"][0]
    assert spread["seeds_ahead"] == 1 and spread["verdict"] == "within the seed spread"
    one_seed = study_table({0: evals(25, 24)}, ["a"]).findings[0]["pairs"][0]
    assert one_seed["seed_interval"] is None and one_seed["verdict"] == "within the sampling noise"


def test_fixed_share_pools_follow_their_shares_and_skip_excluded_prompts():
    from trl_unified.shapes.prompt_source import ShapesPromptSource, shapes_category

    excluded = {"a red square", "a blue dot"}
    pool = build_pool({"single": 3, "position": 1}, ShapesPromptSource(), 0, exclude=excluded)
    assert pool == []
    shares = {"single": 0.75, "position": 0.25}
    pool = build_pool(shares, ShapesPromptSource(), 40, exclude=excluded, seed=3)
    assert Counter(p["category"] for p in pool) == {"single": 30, "position": 10}
    assert all(shapes_category(p["prompt"]) == p["category"] for p in pool) and not excluded & {
        p["prompt"] for p in pool
    }


def test_world_normalises_broad_shares_and_names_unknown_categories():
    from trl_unified.evaluation import load_prompt_set
    from trl_unified.shapes.prompt_source import ShapesPromptSource

    eval_set = load_prompt_set(["a red square", "two blue dots", "three blue dots"], categorize=lambda p: (
        "single" if p.startswith("a ") else "counting"))  # fmt: skip
    world = StudyWorld("w", lambda: None, eval_set, ShapesPromptSource(), (), (), broad_shares={"single": 3,
                       "counting": 1})  # fmt: skip
    assert world.broad_shares == {"single": 0.75, "counting": 0.25}
    assert world.aligned_shares == {"single": pytest.approx(1 / 3), "counting": pytest.approx(2 / 3)}
    with pytest.raises(ValueError, match=r"\['position'\]"):
        StudyWorld("w", lambda: None, eval_set, ShapesPromptSource(), (), (), broad_shares={"position": 1})


def test_config_checks_name_the_option():
    with pytest.raises(ValueError, match="arms .*'nope'"):
        StudyConfig(arms=["nope"])
    with pytest.raises(ValueError, match="seeds"):
        StudyConfig(seeds=[1, 1])
    with pytest.raises(ValueError, match="pool_size"):
        StudyConfig(pool_size=0)
    assert [a.name for a in select_arms(["sft"])] == ["rwr", "sft"]


def _run(args, timeout=900):
    return subprocess.run(
        [sys.executable, "-m", "trl_unified.cli", "ablate", *args], capture_output=True, text=True, timeout=timeout
    )


def test_ablate_quick_end_to_end_resumes_and_refuses_other_settings(tmp_path):
    out = tmp_path / "study"
    result = _run(["--quick", "--output_dir", str(out)])
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads((out / "study.json").read_text())
    assert summary["seeds"] == [0, 1] and summary["world"] == "shapes world"
    names = {f"base_{m}" for m in ("staged", "unified", "image_only")} | {"rwr_staged", "rwr_image_only"}
    names |= {f"{arm}_unified" for arm in ARM_NAMES}
    assert set(summary["evaluations"]) == names
    for seed in (0, 1):
        pools = {p: [json.loads(line) for line in (out / f"seed{seed}/pools/{p}/pool.jsonl").read_text().splitlines()]
                 for p in ("targeted", "broad", "aligned")}  # fmt: skip
        assert {len(p) for p in pools.values()} == {8}  # the same number of prompts, so of samples, in every arm
        evaluations = {n: load_evaluation(out / f"seed{seed}/eval/{n}") for n in names}
        eval_prompts = {r["prompt"] for r in evaluations["base_staged"].rows}
        assert not eval_prompts & {p["prompt"] for pool in pools.values() for p in pool}
        # the aligned pool draws like the evaluation set (every category the same), the broad one like the grammar
        aligned = Counter(p["category"] for p in pools["aligned"])
        assert set(aligned) == {r["category"] for r in evaluations["base_staged"].rows} and set(aligned.values()) == {
            1,
            2,
        }
        assert Counter(p["category"] for p in pools["broad"])["position"] >= 6
        for name, evaluation in evaluations.items():
            recorded = summary["evaluations"][name]["mean_accuracy"]["values"][seed]
            assert recorded == pytest.approx(evaluation.mean_accuracy)
    # every finding's per-seed differences recomputed from the samples on disk
    for finding in summary["findings"]:
        key = "mean_accuracy" if finding["measure"] == "accuracy" else "switch_rate"
        for pair in finding["pairs"]:
            a, b = (summary["evaluations"][n][key]["values"] for n in (pair["baseline"], pair["other"]))
            assert pair["differences"] == pytest.approx([x - y for x, y in zip(a, b)])
    assert {f["number"] for f in summary["findings"]} == {f.number for f in FINDINGS}
    for name in ("study.md", "study.png", "finding1.md", "finding2.png", "finding3_base_staged.json"):
        assert (out / name).stat().st_size > 100
    assert "Finding 2: Weakness-targeted prompts" in (out / "study.md").read_text()

    # a rerun with the same settings reads every evaluation back: nothing is trained again
    before = (out / "study.json").read_text()
    again = _run(["--quick", "--output_dir", str(out)])
    assert again.returncode == 0, again.stderr[-4000:]
    assert "train_runtime" not in again.stdout + again.stderr
    assert json.loads((out / "study.json").read_text())["evaluations"] == json.loads(before)["evaluations"]

    other = _run(["--quick", "--output_dir", str(out), "--beta", "0.5"])
    assert other.returncode == 2 and "beta" in other.stderr and "another --output_dir" in other.stderr


def test_plan_numbers_count_only_samples_that_wrote_reasoning():
    from trl_unified.study.table import plan_correct, plan_score

    result = _result("x_unified", "unified", {"a": [True, False, True]})
    for row, reward, tokens in zip(result.rows, (1.0, 0.5, None), (4, 4, 0)):
        row["text_reward"], row["reasoning_tokens"] = reward, tokens
    assert plan_score(result) == pytest.approx(0.75) and plan_correct(result) == pytest.approx(0.5)
    assert math.isnan(plan_score(EvalResult.from_rows("y", "image_only", [], "score", 0.5)))


def test_ablate_reads_a_yaml_config_and_names_a_bad_option(tmp_path):
    config = tmp_path / "study.yaml"
    config.write_text("pool_size: 0\nseeds: [0, 1]\n")
    result = _run(["--config", str(config), "--output_dir", str(tmp_path / "study")], timeout=300)
    assert result.returncode == 2 and "pool_size must be an integer > 0, got 0" in result.stderr
    assert not (tmp_path / "study").exists()  # checked before anything is written
