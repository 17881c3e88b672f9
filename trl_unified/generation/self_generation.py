"""Offline self-generation: K scored samples per prompt, written as resumable shards, assembled into one dataset.

:func:`self_generate` samples ``num_samples`` sequences ``[prompt][reasoning]<begin-of-image>[image]`` per prompt
with :func:`~trl_unified.generation.sampler.generate_samples`, scores them with
:func:`~trl_unified.rewards.score_batch`, and writes them to ``<output_dir>/shards/`` as it goes. When every shard is
there, the shards are assembled into one ``datasets.Dataset`` in the trainer's format and saved with
``save_to_disk`` in ``<output_dir>`` itself, so ``trl-unified train --dataset_name <output_dir>`` (and
``load_any_dataset``) load it. Beside it: ``generation_config.json`` (every setting, the run's fingerprint and the
statistics) and ``README.md`` (the dataset card). See ``docs/self_generation.md``.

Resume. Shard ``i`` holds prompts ``[i * shard_size, (i + 1) * shard_size)`` and depends on nothing else: each prompt
is sampled with its own seed (:func:`prompt_seed` of the base seed and its ``prompt_id``), in its own sampler call.
A shard is written under a temporary name and renamed, so a shard file is always complete; a restart skips the shards
that exist and regenerates the others. The settings that decide what is generated are fingerprinted into
``generation_config.json``; a restart with other settings is refused (:class:`GenerationConfigMismatch`) unless
``overwrite``.

Data parallel. Under ``torchrun``/``accelerate launch`` (``WORLD_SIZE > 1``) process ``r`` of ``n`` generates the
shards ``i`` with ``i % n == r``; the main process then waits for all of them (a barrier), assembles the dataset,
writes the card, pushes, and every process returns the assembled dataset.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from datasets import Dataset, Features, List, Value, load_from_disk
from datasets import Image as ImageFeature
from transformers.utils import logging

from ..models.base import UnifiedModelAdapter, unwrap_model
from ..rewards.base import RewardFn, RewardSpec, make_specs
from ..rewards.scoring import IMAGE_PREFIX, TEXT_PREFIX, score_batch
from ..versions import package_versions
from .sampler import Sample, SamplingConfig, generate_samples
from .self_generation_config import SelfGenerationConfig

logger = logging.get_logger(__name__)

FORMAT_VERSION = 1
SHARDS_DIR = "shards"
RUN_FILE = "generation_config.json"
CARD_FILE = "README.md"
_TMP_PREFIX = ".tmp-"
_DATASET_FILES = ("dataset_info.json", "state.json")

#: Columns every row has; the reward columns ``text/<name>``/``image/<name>`` come between SAMPLE_ and SCORE_COLUMNS,
#: the prompts source's extra columns last (see ``output_features``).
SAMPLE_COLUMNS = (
    "prompt", "prompt_id", "sample_index", "reasoning", "image", "image_tokens", "prompt_ids", "reasoning_ids"
)
SCORE_COLUMNS = ("text_reward", "image_reward", "reward_errors", "reward_failed")
RUN_COLUMNS = ("mode", "switched", "forced_switch", "seed")
RESERVED_COLUMNS = frozenset(SAMPLE_COLUMNS + SCORE_COLUMNS + RUN_COLUMNS + ("prompts", "images"))


class GenerationConfigMismatch(ValueError):
    """The output folder holds a run made with other settings (and ``overwrite`` is off)."""


# ----- seeds ----------------------------------------------------------------------------------------------------------
def prompt_seed(seed: int, prompt_id: Any) -> int:
    """The sampler seed of one prompt: a hash of the run's base seed and the prompt's id (stable across runs, shard
    sizes and process counts). Stored in every row's ``seed`` column."""
    digest = hashlib.blake2b(f"trl-unified/self-generation/{seed}/{prompt_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def regenerate_sample(
    model, adapter: UnifiedModelAdapter, row: Mapping[str, Any], config: SelfGenerationConfig
) -> Sample:
    """Sample one row of a self-generated dataset again, with the call that made it (same prompt, seed and batch).

    ``config`` is the run's config (``SelfGenerationConfig(**json.load(open("generation_config.json"))["config"])``).
    """
    sampling = replace(config.sampling_config(), seed=int(row["seed"]))
    samples = generate_samples(model, adapter, [row["prompt"]], config.num_samples, sampling, progress=False)
    return samples[int(row["sample_index"])]


# ----- prompts --------------------------------------------------------------------------------------------------------
def load_prompts(
    source: str,
    *,
    split: str = "train",
    config_name: str | None = None,
    prompt_column: str = "prompt",
    prompt_id_column: str = "prompt_id",
    max_prompts: int | None = None,
) -> Dataset:
    """Prompts from a ``.txt`` file (one per line), a JSONL/JSON/Parquet/CSV file, a ``save_to_disk`` folder or a Hub
    dataset, as a dataset with ``prompt``, ``prompt_id`` and the source's other columns (:func:`prepare_prompts`)."""
    from ..data.loading import load_any_dataset

    path = Path(source)
    if path.is_file() and path.suffix.lower() in (".txt", ".text", ".prompts"):
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        dataset = Dataset.from_dict({"prompt": [line for line in lines if line]})
        prompt_column = "prompt"
    else:
        dataset = load_any_dataset(source, split, config_name)
    return prepare_prompts(
        dataset, prompt_column=prompt_column, prompt_id_column=prompt_id_column, max_prompts=max_prompts
    )


def prepare_prompts(
    prompts: Dataset | Sequence[str] | Sequence[Mapping[str, Any]] | str,
    *,
    prompt_column: str = "prompt",
    prompt_id_column: str = "prompt_id",
    max_prompts: int | None = None,
    split: str = "train",
    config_name: str | None = None,
) -> Dataset:
    """Normalise prompts to a dataset with ``prompt`` (text), ``prompt_id`` (unique; the index when not given) and any
    other columns, which are carried through to every sample of the prompt (and passed to the rewards).

    ``prompts`` is a dataset, a list of strings, a list of dicts, or a path or Hub id (see :func:`load_prompts`, which
    reads ``split``/``config_name``).
    """
    if isinstance(prompts, (str, os.PathLike)):
        return load_prompts(
            os.fspath(prompts),
            split=split,
            config_name=config_name,
            prompt_column=prompt_column,
            prompt_id_column=prompt_id_column,
            max_prompts=max_prompts,
        )
    if isinstance(prompts, Dataset):
        dataset = prompts
    else:
        items = list(prompts)
        if all(isinstance(item, str) for item in items):
            dataset = Dataset.from_dict({prompt_column: items})
        elif all(isinstance(item, Mapping) for item in items):
            dataset = Dataset.from_list([dict(item) for item in items])
        else:
            raise TypeError("prompts must be a datasets.Dataset, a path, a list of strings or a list of dicts")
    if max_prompts is not None:
        dataset = dataset.select(range(min(max_prompts, len(dataset))))
    columns = dataset.column_names
    if prompt_column not in columns:
        raise ValueError(f"The prompts have no column {prompt_column!r} (prompt_column); they have {columns}.")
    if prompt_column != "prompt":
        if "prompt" in columns:
            raise ValueError(f"The prompts have both `prompt` and the prompt_column {prompt_column!r}; drop one.")
        dataset = dataset.rename_column(prompt_column, "prompt")
    if prompt_id_column in dataset.column_names:
        if prompt_id_column != "prompt_id":
            if "prompt_id" in dataset.column_names:
                raise ValueError(f"The prompts have both `prompt_id` and the prompt_id_column {prompt_id_column!r}.")
            dataset = dataset.rename_column(prompt_id_column, "prompt_id")
        ids = dataset["prompt_id"]
        missing = [i for i, value in enumerate(ids) if value is None]
        if missing:
            raise ValueError(f"prompt {missing[0]} has no prompt_id ({len(missing)} prompts in all)")
        seen: dict[Any, int] = {}
        for i, value in enumerate(ids):
            if value in seen:
                raise ValueError(f"prompt_id {value!r} is not unique (prompts {seen[value]} and {i})")
            seen[value] = i
    else:
        dataset = dataset.add_column("prompt_id", list(range(len(dataset))))
    for i, text in enumerate(dataset["prompt"]):
        if not isinstance(text, str):
            raise ValueError(f"prompt {i}: the prompt must be a string, got {type(text).__name__}")
    extras = [c for c in dataset.column_names if c not in ("prompt", "prompt_id")]
    clashes = [c for c in extras if c in RESERVED_COLUMNS or c.startswith((TEXT_PREFIX, IMAGE_PREFIX))]
    if clashes:
        raise ValueError(
            f"The prompts' columns {clashes} would clash with self-generation output columns; remove or rename them."
        )
    return dataset.select_columns(["prompt", "prompt_id", *extras])


def _extra_columns(prompts: Dataset) -> list[str]:
    return [c for c in prompts.column_names if c not in ("prompt", "prompt_id")]


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return "sha256:" + hashlib.sha256(value).hexdigest()
    return repr(value)


def prompts_digest(prompts: Dataset) -> str:
    """A content hash of the prompt table (every column, every row, in order)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(prompts.column_names).encode())
    for table in prompts.with_format("arrow").iter(batch_size=1000):
        for row in table.to_pylist():
            digest.update(json.dumps(row, sort_keys=True, default=_json_default).encode())
            digest.update(b"\n")
    return digest.hexdigest()


# ----- processes ------------------------------------------------------------------------------------------------------
class _Processes:
    """Rank, world size and a barrier: `accelerate.PartialState` under a distributed launcher, trivial otherwise."""

    def __init__(self):
        self.state = None
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            import torch
            from accelerate import PartialState

            if PartialState._shared_state:  # already set up (e.g. by an Accelerator): use it as it is
                self.state = PartialState()
            else:
                accelerator = getattr(torch, "accelerator", None)
                available = accelerator.is_available() if accelerator is not None else torch.cuda.is_available()
                self.state = PartialState(cpu=not available)  # cpu=True: gloo, the only way on a CPU-only machine
        self.rank = self.state.process_index if self.state else 0
        self.world = self.state.num_processes if self.state else 1
        self.is_main = self.rank == 0

    def wait(self) -> None:
        if self.state is not None and self.world > 1:
            self.state.wait_for_everyone()


# ----- run bookkeeping ------------------------------------------------------------------------------------------------
def _model_identity(model, adapter: UnifiedModelAdapter, config: SelfGenerationConfig) -> dict[str, Any]:
    """Name, class, family, dtype and a digest of the first 4096 values of every parameter (exact across devices)."""
    import torch

    core = unwrap_model(model)
    digest = hashlib.sha256()
    dtype = None
    for name, parameter in sorted(core.named_parameters(), key=lambda item: item[0]):
        digest.update(name.encode())
        if parameter.device.type == "meta":  # offloaded: only the shape is known here
            digest.update(str(tuple(parameter.shape)).encode())
            continue
        head = parameter.detach().reshape(-1)[:4096].to("cpu").contiguous()
        dtype = dtype or str(head.dtype)
        digest.update(head.view(torch.uint8).numpy().tobytes())
    name_or_path = config.model_name_or_path or getattr(core.config, "_name_or_path", None) or None
    return {
        "name_or_path": name_or_path,
        "revision": config.model_revision,
        "class": type(core).__name__,
        "family": adapter.family,
        "dtype": dtype,
        "weights_digest": digest.hexdigest()[:16],
    }


def _sampling_settings(sampling: SamplingConfig) -> dict[str, Any]:
    settings = asdict(sampling)
    if sampling.rng == "row":  # per-sample generators: the batch size only moves float rounding, may change on resume
        settings.pop("batch_size")
    return settings


def _settings(
    model_info: dict[str, Any],
    sampling: SamplingConfig,
    config: SelfGenerationConfig,
    prompts: Dataset,
    reward_info: dict[str, list[dict[str, Any]]],
) -> dict[str, Any]:
    """What decides the generated data (fingerprinted)."""
    return {
        "format_version": FORMAT_VERSION,
        "model": model_info,
        "sampling": _sampling_settings(sampling),
        "num_samples": config.num_samples,
        "shard_size": config.shard_size,
        "prompts": {"num_prompts": len(prompts), "columns": prompts.column_names, "sha256": prompts_digest(prompts)},
        "rewards": reward_info,
    }


def fingerprint(settings: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=_json_default).encode()).hexdigest()[:32]


def _differences(old: Any, new: Any, path: str = "") -> list[str]:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            out += _differences(old.get(key, "<unset>"), new.get(key, "<unset>"), f"{path}.{key}" if path else str(key))
        return out
    return [] if old == new else [f"{path}: {old!r} -> {new!r}"]


def _read_run_file(output_dir: Path) -> dict[str, Any] | None:
    path = output_dir / RUN_FILE
    if not path.exists():
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"{_TMP_PREFIX}{path.name}.{os.getpid()}")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _write_run_file(output_dir: Path, info: Mapping[str, Any]) -> None:
    text = json.dumps(_jsonable(info), indent=2, sort_keys=False, default=_json_default)
    _write_atomically(output_dir / RUN_FILE, (text + "\n").encode())


def _jsonable(value: Any) -> Any:
    """NaN/inf -> None, recursively (JSON and YAML have no portable NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _clear_run(output_dir: Path) -> None:
    """Delete what a run writes in ``output_dir`` (and nothing else)."""
    shutil.rmtree(output_dir / SHARDS_DIR, ignore_errors=True)
    for path in output_dir.glob("data-*.arrow"):
        path.unlink()
    for name in (*_DATASET_FILES, RUN_FILE, CARD_FILE):
        (output_dir / name).unlink(missing_ok=True)


# ----- shards ---------------------------------------------------------------------------------------------------------
def shard_path(output_dir: str | os.PathLike, index: int, num_shards: int) -> Path:
    return Path(output_dir) / SHARDS_DIR / f"shard-{index:05d}-of-{num_shards:05d}.parquet"


def _shard_rows(index: int, shard_size: int, num_prompts: int) -> range:
    return range(index * shard_size, min((index + 1) * shard_size, num_prompts))


def _shard_complete(path: Path, expected_rows: int) -> bool:
    if not path.exists():
        return False
    import pyarrow.parquet as pq

    try:
        rows = pq.ParquetFile(path).metadata.num_rows
    except Exception as error:  # noqa: BLE001 - an unreadable shard is regenerated
        logger.warning(f"{path} is unreadable ({error}); it will be generated again.")
        return False
    if rows != expected_rows:
        logger.warning(f"{path} has {rows} rows instead of {expected_rows}; it will be generated again.")
        return False
    return True


def output_features(prompts: Dataset, reward_columns: Sequence[str]) -> Features:
    """The schema of every shard and of the assembled dataset."""
    ids = List(Value("int64"))
    features = {
        "prompt": Value("string"),
        "prompt_id": prompts.features["prompt_id"],
        "sample_index": Value("int64"),
        "reasoning": Value("string"),
        "image": ImageFeature(),
        "image_tokens": ids,
        "prompt_ids": ids,
        "reasoning_ids": ids,
        **{column: Value("float64") for column in reward_columns},
        "text_reward": Value("float64"),
        "image_reward": Value("float64"),
        "reward_errors": List(Value("string")),
        "reward_failed": Value("bool"),
        "mode": Value("string"),
        "switched": Value("bool"),
        "forced_switch": Value("bool"),
        "seed": Value("int64"),
    }
    for column in _extra_columns(prompts):
        features[column] = prompts.features[column]
    return Features(features)


def _generate_shard(
    model,
    adapter: UnifiedModelAdapter,
    prompts: Dataset,
    rows: range,
    config: SelfGenerationConfig,
    sampling: SamplingConfig,
    rewards: _Rewards,
    features: Features,
) -> Dataset:
    extras = _extra_columns(prompts)
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


def _write_shard(dataset: Dataset, path: Path) -> None:
    """Write to a temporary name in the same folder, then rename: a shard file is complete or absent."""
    tmp = path.with_name(f"{_TMP_PREFIX}{path.name}.{os.getpid()}")
    try:
        dataset.to_parquet(str(tmp))
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _datasets_progress_bars(enabled: bool):
    """Switch datasets' own progress bars off inside the block (when ``enabled`` is False)."""
    from datasets.utils import disable_progress_bars, enable_progress_bars, is_progress_bar_enabled

    switch = not enabled and is_progress_bar_enabled()
    if switch:
        disable_progress_bars()
    try:
        yield
    finally:
        if switch:
            enable_progress_bars()


def _assemble(output_dir: Path, files: list[Path], features: Features) -> Dataset:
    """Shards -> one dataset saved with ``save_to_disk`` in ``output_dir`` (files moved in by rename)."""
    work = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}assemble-", dir=output_dir))
    try:
        dataset = Dataset.from_parquet([str(f) for f in files], features=features, cache_dir=str(work / "cache"))
        dataset.save_to_disk(str(work / "dataset"))
        del dataset
        written = sorted(p.name for p in (work / "dataset").iterdir())
        for stale in output_dir.glob("data-*.arrow"):
            if stale.name not in written:
                stale.unlink()
        # Data files first, state.json last: renames keep any earlier, still memory-mapped version readable.
        for name in sorted(written, key=lambda n: n in _DATASET_FILES):
            os.replace(work / "dataset" / name, output_dir / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return load_from_disk(str(output_dir))


# ----- statistics -----------------------------------------------------------------------------------------------------
def reward_columns_of(dataset: Dataset) -> list[str]:
    """Per-reward columns (``text/<name>``, ``image/<name>``), then the combined ``text_reward``/``image_reward``."""
    named = [c for c in dataset.column_names if c.startswith((TEXT_PREFIX, IMAGE_PREFIX))]
    return named + [c for c in ("text_reward", "image_reward") if c in dataset.column_names]


def _describe(values: Sequence[float | None]) -> dict[str, Any]:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    not_applicable = sum(v is None for v in values)
    count = len(finite)
    mean = sum(finite) / count if count else math.nan
    std = math.sqrt(sum((v - mean) ** 2 for v in finite) / count) if count else math.nan
    return {
        "mean": mean,
        "std": std,
        "min": min(finite) if finite else math.nan,
        "max": max(finite) if finite else math.nan,
        "count": count,
        "num_failed": len(values) - count - not_applicable,
        "num_not_applicable": not_applicable,
    }


def generation_statistics(dataset: Dataset) -> dict[str, Any]:
    """Numbers of prompts and samples, per-reward mean/std/min/max and failures, switch rates, reward failures.

    ``switch_rate`` is the autonomous switch rate: the fraction of ``unified``-mode samples in which the model emitted
    begin-of-image by itself (``None`` when no sample is in unified mode); ``forced_switch_rate`` the fraction where it
    was forced. ``num_failed_samples`` counts samples with any failed reward evaluation,
    ``num_failed_reward_evaluations`` all failed evaluations (one per reward per sample).
    """
    modes = dataset["mode"]
    unified = [i for i, mode in enumerate(modes) if mode == "unified"]
    switched, forced = dataset["switched"], dataset["forced_switch"]
    errors = dataset["reward_errors"]
    reasoning = dataset["reasoning_ids"]
    return {
        "num_prompts": len(set(dataset["prompt_id"])),
        "num_samples": len(dataset),
        "modes": {mode: modes.count(mode) for mode in sorted(set(modes))},
        "switch_rate": sum(switched[i] for i in unified) / len(unified) if unified else None,
        "forced_switch_rate": sum(forced[i] for i in unified) / len(unified) if unified else None,
        "mean_reasoning_tokens": sum(map(len, reasoning)) / len(reasoning) if reasoning else None,
        "num_failed_samples": sum(bool(e) for e in errors),
        "num_failed_reward_evaluations": sum(len(e) for e in errors),
        "rewards": {column: _describe(dataset[column]) for column in reward_columns_of(dataset)},
    }


# ----- rewards --------------------------------------------------------------------------------------------------------
_MODEL_REWARD_PREFIXES = ("clip", "vqascore", "judge")  # the `load_reward` forms that take a `device`


@dataclass
class _Rewards:
    """Both modalities' rewards as ``score_batch`` takes them, their output columns and their description."""

    text: list[RewardSpec]
    image: list[RewardSpec]
    info: dict[str, list[dict[str, Any]]]

    @property
    def columns(self) -> list[str]:
        return [TEXT_PREFIX + s.name for s in self.text] + [IMAGE_PREFIX + s.name for s in self.image]

    def score(self, prompts, reasoning, images, columns):
        return score_batch(
            [s.fn for s in self.text],
            [s.fn for s in self.image],
            prompts,
            reasoning,
            images,
            columns=columns,
            text_reward_weights=[s.weight for s in self.text],
            image_reward_weights=[s.weight for s in self.image],
        )


def _resolve_rewards(config: SelfGenerationConfig, given: dict[str, Sequence[RewardFn]], weights: dict) -> _Rewards:
    """Callables given in Python, or ``config.<kind>_rewards`` specs built with ``load_reward`` (not both)."""
    resolved, info = {}, {}
    for kind in ("text", "image"):
        specs = list(getattr(config, f"{kind}_rewards") or [])
        fns = list(given[kind] or [])
        if fns and specs:
            raise ValueError(f"pass {kind} rewards either as callables or as config.{kind}_rewards specs, not both")
        if specs:
            from ..rewards.registry import load_reward

            device = {"device": config.reward_device} if config.reward_device else {}
            fns = [
                load_reward(spec, **(device if spec.split(":", 1)[0] in _MODEL_REWARD_PREFIXES else {}))
                for spec in specs
            ]
        kind_weights = weights[kind] if weights[kind] is not None else getattr(config, f"{kind}_reward_weights")
        resolved[kind] = make_specs(fns, None if kind_weights is None else [float(w) for w in kind_weights])
        info[kind] = [
            {"name": s.name, "weight": s.weight, "optional": s.optional, "spec": spec}
            for s, spec in zip(resolved[kind], specs or [None] * len(fns))
        ]
    return _Rewards(resolved["text"], resolved["image"], info)


# ----- the entry point ------------------------------------------------------------------------------------------------
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
    processes = _Processes()
    adapter = adapter or get_adapter(model, processing_class, config.model_adapter)

    if prompts is None:
        if not config.prompts:
            raise ValueError("no prompts: pass `prompts` or set config.prompts")
        prompts_source = config.prompts
    else:
        prompts_source = os.fspath(prompts) if isinstance(prompts, (str, os.PathLike)) else None
    table = prepare_prompts(
        prompts if prompts is not None else config.prompts,
        prompt_column=config.prompt_column,
        prompt_id_column=config.prompt_id_column,
        max_prompts=config.max_prompts,
        split=config.prompts_split,
        config_name=config.prompts_config,
    )
    if len(table) == 0:
        raise ValueError("there are no prompts to generate from")
    rewards = _resolve_rewards(
        config,
        {"text": text_rewards, "image": image_rewards},
        {"text": text_reward_weights, "image": image_reward_weights},
    )
    clashes = sorted(set(rewards.columns) & set(table.column_names))
    if clashes:
        raise ValueError(f"prompt columns {clashes} clash with reward columns")
    features = output_features(table, rewards.columns)
    sampling = config.sampling_config()
    settings = _settings(_model_identity(model, adapter, config), sampling, config, table, rewards.info)
    num_shards = math.ceil(len(table) / config.shard_size)

    _prepare_output_dir(
        output_dir,
        processes,
        config,
        {
            "fingerprint": fingerprint(settings),
            "complete": False,
            "num_prompts": len(table),
            "num_shards": num_shards,
            "settings": settings,
            "prompts_source": prompts_source,
            "config": config.to_dict(),
            "versions": package_versions(),
        },
    )
    _generate_shards(model, adapter, table, config, sampling, rewards, features, output_dir, num_shards, processes)
    processes.wait()
    if processes.is_main:
        _finish(output_dir, config, features, num_shards)
    processes.wait()
    dataset = load_from_disk(str(output_dir))
    if processes.is_main and (set(config.report_to or ()) - {"none"} or callbacks):
        from ..evaluation.reporting import dataset_rows, report_samples

        report_samples("self_generation", *dataset_rows(dataset), report_to=config.report_to, callbacks=callbacks)
    return dataset


def _prepare_output_dir(output_dir: Path, processes: _Processes, config: SelfGenerationConfig, run: dict) -> None:
    """Refuse a folder holding another run (every process checks, so all fail alike), then, on the main process,
    clear it if ``overwrite``, drop a killed run's partial shard and record this run."""
    existing = _read_run_file(output_dir)
    shards_dir = output_dir / SHARDS_DIR
    other_run = existing is not None and existing.get("fingerprint") != run["fingerprint"]
    unknown = existing is None and shards_dir.is_dir() and any(shards_dir.glob("shard-*.parquet"))
    if (other_run or unknown) and not config.overwrite:
        if other_run:
            changes = _differences(existing.get("settings", {}), run["settings"]) or ["(settings not recorded)"]
            what = "a run with other settings:\n  " + "\n  ".join(changes)
        else:
            what = f"shards but no {RUN_FILE}"
        raise GenerationConfigMismatch(
            f"{output_dir} holds {what}\nUse another output_dir, rerun with the original settings to resume, or "
            "pass overwrite=True (--overwrite) to delete that run and start over."
        )
    processes.wait()
    if processes.is_main:
        if other_run or unknown:
            logger.warning(f"overwrite: deleting the previous run in {output_dir}")
            _clear_run(output_dir)
        shards_dir.mkdir(parents=True, exist_ok=True)
        # a killed run's partial shard, half-written run file or interrupted assembly
        for leftover in [*shards_dir.glob(f"{_TMP_PREFIX}*"), *output_dir.glob(f"{_TMP_PREFIX}*")]:
            shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
        _write_run_file(output_dir, run)
    processes.wait()


def _generate_shards(model, adapter, table, config, sampling, rewards, features, output_dir, num_shards, processes):
    """Generate, score and write this process's missing shards (shard ``i`` belongs to process ``i % world``)."""
    from tqdm.auto import tqdm

    num_prompts = len(table)
    mine = [i for i in range(num_shards) if i % processes.world == processes.rank]
    sizes = {i: len(_shard_rows(i, config.shard_size, num_prompts)) for i in mine}
    done = {i for i in mine if _shard_complete(shard_path(output_dir, i, num_shards), sizes[i] * config.num_samples)}
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
            rows = _shard_rows(index, config.shard_size, num_prompts)
            shard = _generate_shard(model, adapter, table, rows, config, sampling, rewards, features)
            with _datasets_progress_bars(False):  # ours is enough
                _write_shard(shard, shard_path(output_dir, index, num_shards))
            bar.update(len(rows))


def _finish(output_dir: Path, config: SelfGenerationConfig, features: Features, num_shards: int) -> None:
    """Main process: assemble the shards, record the statistics, write the card, push."""
    from .dataset_card import make_dataset_card

    files = [shard_path(output_dir, i, num_shards) for i in range(num_shards)]
    missing = [f.name for f in files if not f.exists()]
    if missing:
        raise RuntimeError(f"shards missing after generation (did a process fail?): {missing}")
    with _datasets_progress_bars(config.progress):
        dataset = _assemble(output_dir, files, features)
    run = _read_run_file(output_dir) or {}
    run.update(complete=True, statistics=generation_statistics(dataset))
    _write_run_file(output_dir, run)
    repo_id = config.hub_dataset_id or (output_dir.resolve().name if config.push_to_hub else None)
    make_dataset_card(run, dataset_id=repo_id, columns=dataset.column_names).save(str(output_dir / CARD_FILE))
    if config.push_to_hub:
        push_dataset_to_hub(dataset, output_dir, repo_id, private=config.private)


def push_dataset_to_hub(
    dataset: Dataset, output_dir: str | os.PathLike, repo_id: str, private: bool | None = None
) -> str:
    """Push the card (``README.md``) and ``generation_config.json``, then the data (``Dataset.push_to_hub`` merges its
    ``dataset_info``/``configs`` metadata into the card). Returns the repo id."""
    from huggingface_hub import CommitOperationAdd, HfApi

    output_dir = Path(output_dir)
    api = HfApi()
    repo_id = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True).repo_id
    operations = [
        CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(output_dir / name))
        for name in (CARD_FILE, RUN_FILE)
        if (output_dir / name).exists()
    ]
    api.create_commit(
        repo_id, operations=operations, repo_type="dataset", commit_message="Add dataset card and generation config"
    )
    dataset.push_to_hub(repo_id, private=private, commit_message="Upload self-generated dataset")
    return repo_id


__all__ = [
    "GenerationConfigMismatch",
    "SelfGenerationConfig",
    "generation_statistics",
    "load_prompts",
    "output_features",
    "prepare_prompts",
    "prompt_seed",
    "push_dataset_to_hub",
    "regenerate_sample",
    "reward_columns_of",
    "self_generate",
    "shard_path",
]
