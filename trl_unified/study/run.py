"""Run the study: for each seed, evaluate the base model, draw the three pools, self-generate on each, post-train
every arm from the base model, evaluate it, and finally aggregate (:mod:`.table`).

Layout of ``output_dir``:

* ``study_config.json``: the settings (a rerun into the same folder resumes: finished evaluations are read back, and
  an arm whose evaluations are all there is not trained again; other settings are refused);
* ``seed<S>/eval/<model>_<mode>/``: each evaluation (:func:`~trl_unified.evaluation.evaluate_model`'s folder);
* ``seed<S>/pools/<pool>/pool.jsonl`` (and the targeted pool's weakness report), ``seed<S>/generated/<pool>/`` (the
  self-generated dataset), ``seed<S>/train/<arm>/`` (the trained model);
* ``study.md``, ``study.json``, ``study.png`` (:class:`~.table.StudyTable`) and ``finding<N>.md/.json/.png`` (the
  library's comparison of all seeds' samples pooled).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from ..evaluation.evaluate import RESULTS_FILE, EvalResult, evaluate_model, load_evaluation
from ..jsonable import jsonable
from ..targeting import build_pool, build_targeted_pool, weakness_report, write_pool
from .arms import MODES, Arm, select_arms
from .rounds import post_train, self_generate_round
from .study_config import StudyConfig
from .table import StudyTable, study_table
from .world import StudyWorld

CONFIG_FILE = "study_config.json"


def run_study(config: StudyConfig, world: StudyWorld, log: Callable[[str], None] = print) -> StudyTable:
    """Run every arm for every seed on ``world`` and write the tables (see the module docstring)."""
    start = time.time()
    out = Path(config.output_dir)
    _prepare(out, config)
    arms = select_arms(config.arms)

    def timed(message: str) -> None:
        log(f"[{time.time() - start:6.0f}s] {message}")

    evaluations = {seed: _run_seed(config, world, arms, seed, out / f"seed{seed}", timed) for seed in config.seeds}
    table = study_table(evaluations, world.categories, comparisons_dir=out)
    previous = json.loads((out / "study.json").read_text()) if (out / "study.json").exists() else {}
    # wall time of every invocation that built this folder (a resumed study adds its own)
    seconds = previous.get("seconds", 0.0) + time.time() - start
    table.save(out, world=world.name, seconds=seconds, config=asdict(config))
    log("\n" + table.to_markdown())
    timed(f"done; tables in {out}/study.md, comparisons in {out}/finding*.md")
    return table


def _prepare(out: Path, config: StudyConfig) -> None:
    """Create ``out``, or resume a study made with the same settings; refuse any other folder's contents."""
    settings = jsonable(asdict(config))
    settings.pop("report_to", None)
    path = out / CONFIG_FILE
    if path.exists():
        previous = json.loads(path.read_text())
        changed = sorted(k for k in set(settings) | set(previous) if settings.get(k) != previous.get(k))
        if changed:
            raise ValueError(
                f"{out} holds a study with other settings ({', '.join(changed)}); use another --output_dir"
            )
        return
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty and holds no study ({CONFIG_FILE}); use another --output_dir")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2) + "\n")


def _run_seed(config: StudyConfig, world: StudyWorld, arms: tuple[Arm, ...], seed: int, folder: Path, log):
    sampling = config.sampling(seed)
    results: dict[str, EvalResult] = {}

    def evaluated(name: str) -> bool:
        return (folder / "eval" / name / RESULTS_FILE).exists()

    def evaluate(model, processor, name: str, mode: str) -> None:
        if evaluated(name):
            results[name] = load_evaluation(folder / "eval" / name)
        else:
            results[name] = evaluate_model(
                model,
                processor,
                world.eval_set,
                image_rewards=world.eval_image_rewards,
                text_rewards=world.text_rewards,
                mode=mode,
                sampling=sampling,
                samples_per_category=config.eval_samples_per_category,
                metric=world.metric,
                threshold=world.threshold,
                output_dir=folder / "eval",
                name=name,
                report_to=config.report_to,
                progress=False,
            )
        r = results[name]
        log(f"seed {seed} {name}: accuracy {100 * r.mean_accuracy:.1f}%, switch rate {100 * r.switch_rate:.1f}%")

    def arm_evaluations(arm: Arm) -> list[tuple[str, str]]:
        modes = MODES if arm.name == "rwr" else ("unified",)
        return [(f"{arm.name}_{mode}", mode) for mode in modes]

    base, processor = world.load_model()
    for mode in MODES:
        evaluate(base, processor, f"base_{mode}", mode)
    todo = [a for a in arms if not all(evaluated(n) for n, _ in arm_evaluations(a))]
    datasets = {}
    for pool_name in dict.fromkeys(a.pool for a in todo):
        pool = _draw_pool(pool_name, config, world, results, seed, folder / "pools" / pool_name)
        log(f"seed {seed} pool {pool_name}: {len(pool)} prompts, self-generating {config.samples_per_prompt} each")
        datasets[pool_name] = self_generate_round(
            base, processor, pool, config, sampling, folder / "generated" / pool_name,
            text_rewards=world.text_rewards, image_rewards=world.image_rewards,
        )  # fmt: skip
    for arm in arms:
        model = None
        if arm in todo:
            model, processor = world.load_model()
            model = post_train(
                model, processor, datasets[arm.pool], config, folder / "train" / arm.name, seed=seed,
                **{**world.training, **arm.weighting},
            )  # fmt: skip
        for name, mode in arm_evaluations(arm):
            evaluate(model, processor, name, mode)
    return results


def _draw_pool(name: str, config: StudyConfig, world: StudyWorld, results, seed: int, folder: Path) -> list[dict]:
    """The ``name`` pool of this seed (same size and source for all three; never an evaluation prompt)."""
    exclude = set(world.eval_set.prompts)
    report = None
    if name == "targeted":  # where the base model's best mode fails
        best = max((results[f"base_{m}"] for m in MODES), key=lambda r: r.mean_accuracy)
        report = weakness_report(best, config.min_category_share, world.categories)
        pool = build_targeted_pool(report, world.source, config.pool_size, exclude=exclude, seed=seed)
    else:
        shares = world.broad_shares if name == "broad" else world.aligned_shares
        pool = build_pool(shares, world.source, config.pool_size, exclude=exclude, seed=seed)
    write_pool(pool, report, folder)
    return pool


__all__ = ["CONFIG_FILE", "run_study"]
