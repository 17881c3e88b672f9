"""Run state of a self-generation output folder: the run file, the settings fingerprint, atomic writes, and the
checks that make a restart resume the same run (or refuse a folder that holds another one)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from datasets import Dataset
from transformers.utils import logging

from ..models.base import UnifiedModelAdapter, unwrap_model
from .processes import Processes
from .sampler import SamplingConfig
from .self_generation_config import SelfGenerationConfig

logger = logging.get_logger(__name__)

FORMAT_VERSION = 1
RUN_FILE = "generation_config.json"
CARD_FILE = "README.md"
SHARDS_DIR = "shards"
TMP_PREFIX = ".tmp-"
DATASET_FILES = ("dataset_info.json", "state.json")


class GenerationConfigMismatch(ValueError):
    """The output folder holds a run made with other settings (and ``overwrite`` is off)."""


def json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return "sha256:" + hashlib.sha256(value).hexdigest()
    return repr(value)


def prompts_digest(prompts: Dataset) -> str:
    """A content hash of the prompt table (every column, every row, in order)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(prompts.column_names).encode())
    for table in prompts.with_format("arrow").iter(batch_size=1000):
        for row in table.to_pylist():
            digest.update(json.dumps(row, sort_keys=True, default=json_default).encode())
            digest.update(b"\n")
    return digest.hexdigest()


def model_identity(model, adapter: UnifiedModelAdapter, config: SelfGenerationConfig) -> dict[str, Any]:
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


def run_settings(
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
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=json_default).encode()).hexdigest()[:32]


def _differences(old: Any, new: Any, path: str = "") -> list[str]:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            out += _differences(old.get(key, "<unset>"), new.get(key, "<unset>"), f"{path}.{key}" if path else str(key))
        return out
    return [] if old == new else [f"{path}: {old!r} -> {new!r}"]


def read_run_file(output_dir: Path) -> dict[str, Any] | None:
    path = output_dir / RUN_FILE
    if not path.exists():
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{os.getpid()}")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_run_file(output_dir: Path, info: Mapping[str, Any]) -> None:
    text = json.dumps(jsonable(info), indent=2, sort_keys=False, default=json_default)
    write_atomically(output_dir / RUN_FILE, (text + "\n").encode())


def jsonable(value: Any) -> Any:
    """NaN/inf -> None, recursively (JSON and YAML have no portable NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def clear_run(output_dir: Path) -> None:
    """Delete what a run writes in ``output_dir`` (and nothing else)."""
    shutil.rmtree(output_dir / SHARDS_DIR, ignore_errors=True)
    for path in output_dir.glob("data-*.arrow"):
        path.unlink()
    for name in (*DATASET_FILES, RUN_FILE, CARD_FILE):
        (output_dir / name).unlink(missing_ok=True)


def prepare_output_dir(output_dir: Path, processes: Processes, config: SelfGenerationConfig, run: dict) -> None:
    """Refuse a folder holding another run (every process checks, so all fail alike), then, on the main process,
    clear it if ``overwrite``, drop a killed run's partial shard and record this run."""
    existing = read_run_file(output_dir)
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
            clear_run(output_dir)
        shards_dir.mkdir(parents=True, exist_ok=True)
        # a killed run's partial shard, half-written run file or interrupted assembly
        for leftover in [*shards_dir.glob(f"{TMP_PREFIX}*"), *output_dir.glob(f"{TMP_PREFIX}*")]:
            shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
        write_run_file(output_dir, run)
    processes.wait()
