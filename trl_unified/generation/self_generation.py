"""Offline self-generation: K scored samples per prompt, written as resumable shards, assembled into one dataset.

:func:`self_generate` samples ``num_samples`` sequences ``[prompt][reasoning]<begin-of-image>[image]`` per prompt
with :func:`~trl_unified.generation.sampler.generate_samples`, scores them with
:func:`~trl_unified.rewards.score_batch`, and writes them to ``<output_dir>/shards/`` as it goes. When every shard is
there, the shards are assembled into one ``datasets.Dataset`` in the trainer's format and saved with
``save_to_disk`` in ``<output_dir>`` itself, so ``trl-unified train --dataset_name <output_dir>`` (and
``load_any_dataset``) load it. Beside it: ``trl_unified_run.json`` (every setting, the run's fingerprint, the shards'
checksums and the statistics) and ``README.md`` (the dataset card). See ``docs/self_generation.md``.

Resume. Shard ``i`` holds prompts ``[i * shard_size, (i + 1) * shard_size)`` and depends on nothing else: each prompt
is sampled with its own seed (:func:`prompt_seed` of the base seed and its ``prompt_id``); a shard is one sampler call.
A shard is written under a temporary name and renamed, so a shard file is always complete; a restart skips the shards
that exist and match their recorded checksum and regenerates the others. The settings that decide what is generated
(the model by a digest of its weights, not its path) are fingerprinted into ``trl_unified_run.json``; a restart with
other settings is refused (:class:`GenerationConfigMismatch`) unless ``overwrite``, which removes only the files a run
writes. A folder holding anything but a run of this package is refused (:class:`OutputDirError`), and a lock file
(``trl_unified.lock``: pid and host) keeps a second writer out.

Data parallel. Under ``torchrun``/``accelerate launch`` (``WORLD_SIZE > 1``) process ``r`` of ``n`` generates the
shards ``i`` with ``i % n == r``; the main process then waits for all of them (a barrier), assembles the dataset,
writes the card, pushes, and every process returns the assembled dataset.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from datasets import Dataset, Features, load_from_disk
from transformers.utils import logging

from ..models.base import UnifiedModelAdapter
from ..models.sharding import gathers_parameters
from ..rewards.base import RewardFn
from ..rewards.resolve import RewardSet, resolve_rewards
from ..versions import package_versions
from .processes import Processes
from .prompts import prompt_table
from .run_state import (
    CARD_FILE,
    GenerationConfigMismatch,
    OutputDirError,
    file_digest,
    fingerprint,
    model_identity,
    model_source,
    output_dir_lock,
    prepare_output_dir,
    read_run_file,
    recorded_checksum,
    run_settings,
    write_run_file,
)
from .sampler import Sample, SamplingConfig, generate_samples
from .schema import extra_columns, output_features
from .seeds import prompt_seed
from .self_generation_config import SelfGenerationConfig
from .shards import assemble, datasets_progress_bars, shard_complete, shard_path, shard_rows, write_shard
from .statistics import generation_statistics

logger = logging.get_logger(__name__)


def regenerate_sample(
    model, adapter: UnifiedModelAdapter, row: Mapping[str, Any], config: SelfGenerationConfig
) -> Sample:
    """Sample one row of a self-generated dataset again, with the call that made it (same prompt, seed and batch).

    ``config`` is the run's config (``SelfGenerationConfig(**json.load(open("trl_unified_run.json"))["config"])``).
    """
    sampling = replace(config.sampling_config(), seed=int(row["seed"]))
    samples = generate_samples(model, adapter, [row["prompt"]], config.num_samples, sampling, progress=False)
    return samples[int(row["sample_index"])]


def _generate_shard(
    model,
    adapter: UnifiedModelAdapter,
    prompts: Dataset,
    rows: range,
    config: SelfGenerationConfig,
    sampling: SamplingConfig,
    rewards: RewardSet,
    features: Features,
) -> Dataset:
    extras = extra_columns(prompts)
    block = prompts.select(rows)
    # One call for the whole block (full batches), each prompt seeded on its own: a sample depends only on
    # (seed, prompt_id, sample_index), never on its shard, batch or process.
    prompt_seeds = [prompt_seed(config.seed, prompt_id) for prompt_id in block["prompt_id"]]
    samples = generate_samples(
        model, adapter, list(block["prompt"]), config.num_samples, sampling, progress=False, prompt_seeds=prompt_seeds
    )
    seeds = [prompt_seeds[sample.prompt_index] for sample in samples]
    owners = [sample.prompt_index for sample in samples]  # row of `block` each sample belongs to
    extra_values = {}
    for column in extras:
        values = block[column]
        extra_values[column] = [values[i] for i in owners]
    scores = rewards.score(
        [s.prompt for s in samples], [s.reasoning for s in samples], [s.image for s in samples], extra_values
    )
    prompt_ids = block["prompt_id"]
    columns: dict[str, list[Any]] = {
        "prompt": [s.prompt for s in samples],
        "prompt_id": [prompt_ids[i] for i in owners],
        "sample_index": [s.sample_index for s in samples],
        "reasoning": [s.reasoning for s in samples],
        "image": [s.image for s in samples],
        "image_tokens": [list(map(int, s.image_tokens)) for s in samples],
        "prompt_ids": [list(map(int, s.prompt_ids)) for s in samples],
        "reasoning_ids": [list(map(int, s.reasoning_ids)) for s in samples],
        **scores.rewards,
        "text_reward": list(scores.text_reward),
        "image_reward": list(scores.image_reward),
        "reward_errors": [list(e) for e in scores.reward_errors],
        "reward_failed": scores.failed,
        "mode": [s.mode for s in samples],
        "switched": [bool(s.switched) for s in samples],
        "forced_switch": [bool(s.forced_switch) for s in samples],
        "seed": seeds,
        **extra_values,
    }
    return Dataset.from_dict(columns, features=features)


@gathers_parameters  # ZeRO-3: whole parameters, gathered once on every process
def self_generate(
    model,
    processing_class: Any,
    prompts: Dataset | Sequence[str] | Sequence[Mapping[str, Any]] | str | None = None,
    config: SelfGenerationConfig | None = None,
    text_rewards: Sequence[RewardFn] = (),
    image_rewards: Sequence[RewardFn] = (),
    *,
    adapter: UnifiedModelAdapter | None = None,
    text_reward_weights: Sequence[float] | None = None,
    image_reward_weights: Sequence[float] | None = None,
    callbacks: Sequence[Any] = (),
) -> Dataset:
    """Generate ``config.num_samples`` scored samples per prompt into ``config.output_dir``; return the dataset.

    Args:
        model: the unified model (on the device to sample on); under a distributed launcher, each process's copy.
        processing_class: its processor or tokenizer (for the adapter).
        prompts: a dataset, a list of strings or dicts, or a path (see :func:`prepare_prompts`); default: the
            ``config.prompts`` source.
        config: a :class:`SelfGenerationConfig` (``output_dir`` is required).
        text_rewards / image_rewards: reward callables (the reward protocol of :mod:`trl_unified.rewards`); default:
            built from ``config.text_rewards`` / ``config.image_rewards`` with ``load_reward``.
        adapter: the model's adapter (default: ``get_adapter(model, processing_class, config.model_adapter)``).
        text_reward_weights / image_reward_weights: default ``config.*_reward_weights`` (else all 1.0).
        callbacks: objects with an ``on_samples`` method (e.g. ``trainer.callback_handler.callbacks``) that, with
            ``config.report_to``, receive a samples table and images when the run is done
            (:func:`trl_unified.evaluation.report_samples`).

    Returns the assembled dataset (loaded from ``output_dir``; identical on every process). Rows are ordered by prompt
    (source order) then ``sample_index``; the columns are listed in ``docs/self_generation.md``.

    Raises :class:`GenerationConfigMismatch` when ``output_dir`` holds a run with other settings (unless
    ``config.overwrite``).
    """
    from ..models.registry import get_adapter

    config = config or SelfGenerationConfig()
    if not config.output_dir:
        raise ValueError("self_generate needs config.output_dir")
    output_dir = Path(config.output_dir)
    processes = Processes()
    adapter = adapter or get_adapter(model, processing_class, config.model_adapter)

    if prompts is None:
        prompts_source = config.prompts
    else:
        prompts_source = os.fspath(prompts) if isinstance(prompts, (str, os.PathLike)) else None
    table = prompt_table(config, prompts)
    rewards = resolve_rewards(
        text_rewards=text_rewards,
        image_rewards=image_rewards,
        text_specs=config.text_rewards or (),
        image_specs=config.image_rewards or (),
        text_weights=config.text_reward_weights if text_reward_weights is None else text_reward_weights,
        image_weights=config.image_reward_weights if image_reward_weights is None else image_reward_weights,
        device=config.reward_device,
    )
    clashes = sorted(set(rewards.columns) & set(table.column_names))
    if clashes:
        raise ValueError(f"prompt columns {clashes} clash with reward columns")
    if rewards.empty and not config.no_rewards:
        logger.warning(
            "self-generation without any reward: `text_reward` and `image_reward` will be 0.0 for every sample, so "
            "reward weighting cannot tell them apart. Pass text_rewards/image_rewards, or no_rewards=True "
            "(--no_rewards) to say that this is meant."
        )
    features = output_features(table, rewards.columns)
    sampling = config.sampling_config()
    settings = run_settings(model_identity(model, adapter, config), sampling, config, table, rewards.info)
    num_shards = math.ceil(len(table) / config.shard_size)

    run = {
        "fingerprint": fingerprint(settings),
        "complete": False,
        "num_prompts": len(table),
        "num_shards": num_shards,
        "settings": settings,
        "model_source": model_source(model, config),
        "prompts_source": prompts_source,
        "config": config.to_dict(),
        "versions": package_versions(),
    }
    with output_dir_lock(output_dir, processes):
        prepare_output_dir(output_dir, processes, config, run)
        run = read_run_file(output_dir) if processes.is_main else run
        _generate_shards(
            model, adapter, table, config, sampling, rewards, features, output_dir, num_shards, processes, run
        )
        processes.wait()
        if processes.is_main:
            _finish(output_dir, config, features, num_shards)
        processes.wait()
    dataset = load_from_disk(str(output_dir))
    if processes.is_main and (set(config.report_to or ()) - {"none"} or callbacks):
        from ..evaluation.reporting import dataset_rows, report_samples

        report_samples("self_generation", *dataset_rows(dataset), report_to=config.report_to, callbacks=callbacks)
    return dataset


def _generate_shards(
    model, adapter, table, config, sampling, rewards, features, output_dir, num_shards, processes, run=None
):
    """Generate, score and write this process's missing shards (shard ``i`` belongs to process ``i % world``)."""
    from tqdm.auto import tqdm

    num_prompts = len(table)
    mine = [i for i in range(num_shards) if i % processes.world == processes.rank]
    sizes = {i: len(shard_rows(i, config.shard_size, num_prompts)) for i in mine}
    done = {
        i for i in mine if shard_complete(shard_path(output_dir, i, num_shards), sizes[i] * config.num_samples, run)
    }
    if done:
        logger.info(f"process {processes.rank}: resuming, {len(done)} of {len(mine)} shards already written")
    description = "self-generation" + (f" [process {processes.rank}/{processes.world}]" if processes.world > 1 else "")
    with tqdm(
        total=sum(sizes.values()),
        initial=sum(sizes[i] for i in done),
        unit="prompt",
        desc=description,
        disable=not config.progress,
    ) as bar:
        for index in (i for i in mine if i not in done):
            rows = shard_rows(index, config.shard_size, num_prompts)
            shard = _generate_shard(model, adapter, table, rows, config, sampling, rewards, features)
            with datasets_progress_bars(False):  # ours is enough
                write_shard(shard, shard_path(output_dir, index, num_shards))
            bar.update(len(rows))


def _finish(output_dir: Path, config: SelfGenerationConfig, features: Features, num_shards: int) -> None:
    """Main process: assemble the shards, record the statistics, write the card, push."""
    from .dataset_card import make_dataset_card
    from .hub import push_dataset_to_hub

    files = [shard_path(output_dir, i, num_shards) for i in range(num_shards)]
    missing = [f.name for f in files if not f.exists()]
    if missing:
        raise RuntimeError(f"shards missing after generation (did a process fail?): {missing}")
    run = read_run_file(output_dir) or {}
    checksums = {}
    for path in files:
        checksums[path.name] = file_digest(path)
        if checksums[path.name] != recorded_checksum(path, run):
            raise OutputDirError(f"{path} changed after it was written (checksum mismatch); rerun to generate it again")
    with datasets_progress_bars(config.progress):
        dataset = assemble(output_dir, files, features)
    run.update(complete=True, statistics=generation_statistics(dataset), shard_checksums=checksums)
    repo_id = config.hub_dataset_id or (output_dir.resolve().name if config.push_to_hub else None)
    if config.push_to_hub:  # the full id (namespace included), for the card and for trainers' cards that name it
        from huggingface_hub import HfApi

        repo_id = HfApi().create_repo(repo_id, repo_type="dataset", private=config.private, exist_ok=True).repo_id
        run["hub_dataset_id"] = repo_id
    write_run_file(output_dir, run)
    make_dataset_card(run, dataset_id=repo_id, columns=dataset.column_names).save(str(output_dir / CARD_FILE))
    if config.push_to_hub:
        push_dataset_to_hub(dataset, output_dir, repo_id, private=config.private)


__all__ = [
    "GenerationConfigMismatch",
    "SelfGenerationConfig",
    "prompt_seed",
    "regenerate_sample",
    "self_generate",
]
