"""Run state of a self-generation output folder: the run file, the settings fingerprint, atomic writes, and the
checks that make a restart resume the same run (or refuse a folder that holds another one)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from datasets import Dataset
from transformers.utils import logging

from ..jsonable import jsonable
from ..models.base import UnifiedModelAdapter, unwrap_model
from .processes import Processes
from .sampler import SamplingConfig
from .self_generation_config import SelfGenerationConfig

logger = logging.get_logger(__name__)

FORMAT_VERSION = 1
#: The run file: a name no other tool writes (transformers owns `generation_config.json`, which runs before this
#: package's rename used; such a file is still read when it is clearly ours, see :func:`read_run_file`).
RUN_FILE = "trl_unified_run.json"
LEGACY_RUN_FILE = "generation_config.json"
LOCK_FILE = "trl_unified.lock"
CARD_FILE = "README.md"
SHARDS_DIR = "shards"
TMP_PREFIX = ".tmp-"
DATASET_FILES = ("dataset_info.json", "state.json")


class GenerationConfigMismatch(ValueError):
    """The output folder holds a run made with other settings (and ``overwrite`` is off)."""


class OutputDirError(ValueError):
    """The output folder cannot be used: it holds files this package did not write, or another process writes it."""


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


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_digest(model) -> tuple[str, list[str]]:
    """A digest over every byte of every parameter and buffer (names, shapes, dtypes and values), and the dtypes.

    The model is identified by its weights, not by the path it was loaded from: the same checkpoint loaded through a
    relative path, an absolute path or a Hub id resumes the same run, and other weights under the same path do not.
    Offloaded (meta) tensors contribute only their shape.
    """
    import torch

    digest = hashlib.sha256()  # ~2 GB/s of CPU (hardware SHA), over whole tensors, not a prefix
    dtypes = set()
    tensors = [*unwrap_model(model).named_parameters(), *unwrap_model(model).named_buffers()]
    for name, tensor in sorted(tensors, key=lambda item: item[0]):
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        dtypes.add(str(tensor.dtype))
        if tensor.device.type == "meta":
            continue
        flat = tensor.detach().reshape(-1).to("cpu").contiguous()
        digest.update(memoryview(flat.view(torch.uint8).numpy()))
    return digest.hexdigest()[:32], sorted(dtypes)


def model_identity(model, adapter: UnifiedModelAdapter, config: SelfGenerationConfig) -> dict[str, Any]:
    """Class, family, dtypes and a digest of the whole weights: what decides the samples (fingerprinted)."""
    core = unwrap_model(model)
    digest, dtypes = weights_digest(core)
    return {"class": type(core).__name__, "family": adapter.family, "dtypes": dtypes, "weights_digest": digest}


def model_source(model, config: SelfGenerationConfig) -> dict[str, Any]:
    """Where the model came from (recorded for provenance, not fingerprinted: a path may change between runs)."""
    core = unwrap_model(model)
    name_or_path = config.model_name_or_path or getattr(core.config, "_name_or_path", None) or None
    return {"name_or_path": name_or_path, "revision": config.model_revision}


def run_settings(
    model_info: dict[str, Any],
    sampling: SamplingConfig,
    config: SelfGenerationConfig,
    prompts: Dataset,
    reward_info: dict[str, list[dict[str, Any]]],
) -> dict[str, Any]:
    """What decides the generated data (fingerprinted). The batch size is in it: batching moves float rounding, which
    in bf16 changes some samples, so a resume with another batch size would mix two runs' rounding."""
    return {
        "format_version": FORMAT_VERSION,
        "model": model_info,
        "sampling": asdict(sampling),
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


def is_our_run(info: Any) -> bool:
    """Whether a parsed JSON file is a run file of this package (its keys, not just its name)."""
    return (
        isinstance(info, Mapping)
        and isinstance(info.get("fingerprint"), str)
        and isinstance(info.get("settings"), Mapping)
        and "format_version" in info["settings"]
    )


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def run_file_path(output_dir: Path) -> Path | None:
    """The run file of ``output_dir``: ours, or a pre-rename ``generation_config.json`` that is clearly ours."""
    output_dir = Path(output_dir)
    if (output_dir / RUN_FILE).exists():
        return output_dir / RUN_FILE
    legacy = output_dir / LEGACY_RUN_FILE
    if legacy.exists() and is_our_run(_read_json(legacy)):
        return legacy
    return None


def read_run_file(output_dir: Path) -> dict[str, Any] | None:
    """The run recorded in ``output_dir``, or None when it holds no run of this package."""
    path = run_file_path(output_dir)
    if path is None:
        return None
    info = _read_json(path)
    if not is_our_run(info):
        raise OutputDirError(f"{path} is not a readable trl-unified run file; move it away or use another output_dir.")
    return info


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
    legacy = output_dir / LEGACY_RUN_FILE
    if legacy.exists() and is_our_run(_read_json(legacy)):  # migrated: the old name is ours, and now stale
        legacy.unlink()


def clear_run(output_dir: Path) -> None:
    """Delete what a run of this package writes in ``output_dir``, and nothing else (other files stay)."""
    shards_dir = output_dir / SHARDS_DIR
    for path in [*shards_dir.glob("shard-*.parquet"), *shards_dir.glob("shard-*.parquet.sha256")]:
        path.unlink()
    with contextlib.suppress(OSError):
        shards_dir.rmdir()  # only if nothing else is in it
    for path in output_dir.glob("data-*.arrow"):
        path.unlink()
    legacy = run_file_path(output_dir)
    for name in (*DATASET_FILES, RUN_FILE, CARD_FILE):
        (output_dir / name).unlink(missing_ok=True)
    if legacy is not None:
        legacy.unlink(missing_ok=True)


def _foreign_entries(output_dir: Path) -> list[str]:
    """Entries of a folder holding no run file that this package would not have written before the run file.

    (The lock is taken, and the run file written, before anything else: a folder whose only entries are those
    is one this package started.)
    """
    if not output_dir.exists():
        return []
    if not output_dir.is_dir():
        return [str(output_dir)]
    ours = {LOCK_FILE, SHARDS_DIR}
    foreign = []
    for entry in sorted(output_dir.iterdir()):
        if entry.name == SHARDS_DIR:
            nonempty = not entry.is_dir() or any(entry.iterdir())
        else:
            nonempty = entry.name not in ours and not entry.name.startswith(f"{TMP_PREFIX}{RUN_FILE}.")
        if nonempty:
            foreign.append(entry.name)
    return foreign


def check_output_dir(output_dir: Path) -> dict[str, Any] | None:
    """The run recorded in ``output_dir``; refuses a folder that holds anything else (``overwrite`` or not)."""
    existing = read_run_file(output_dir)
    if existing is None:
        foreign = _foreign_entries(Path(output_dir))
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise OutputDirError(
                f"{output_dir} is not empty and holds no trl-unified run ({RUN_FILE}): {shown}. It is not used, "
                "even with --overwrite, so that nothing this package did not write is replaced; choose a new or "
                "empty output_dir."
            )
    return existing


# ----- the lock: one writer per output folder ------------------------------------------------------------------------
def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def lock_holder(output_dir: Path) -> str | None:
    """Who holds ``output_dir``'s lock (a description), or None: no lock, or one left by a process that is gone on
    this host (a killed run), which may be taken over."""
    path = Path(output_dir) / LOCK_FILE
    if not path.exists():
        return None
    holder = _read_json(path)
    if not isinstance(holder, Mapping):  # being written this instant, or garbage: look once more
        time.sleep(0.2)
        holder = _read_json(path)
    if not isinstance(holder, Mapping):
        return f"an unknown process (unreadable lock file {path})" if path.exists() else None
    pid, host = holder.get("pid"), holder.get("host")
    if isinstance(pid, int) and host == socket.gethostname() and not _process_alive(pid):
        return None
    return f"process {pid} on host {host} (since {holder.get('since')})"


def _busy(output_dir: Path, who: str) -> OutputDirError:
    return OutputDirError(
        f"{output_dir} is being written by {who}: two writers would mix their shards. Wait for it to finish, or, if "
        f"that process is gone, delete {Path(output_dir) / LOCK_FILE}."
    )


def check_lock(output_dir: Path) -> None:
    """Refuse early (before a model is loaded) when another live process writes ``output_dir``."""
    who = lock_holder(output_dir)
    if who is not None:
        raise _busy(output_dir, who)


def acquire_lock(output_dir: Path) -> Path:
    """Create ``output_dir/trl_unified.lock`` (holder's pid, host and start time), or say who holds it.

    A lock left by a process that is gone (same host, dead pid: a killed run) is taken over, with a message.
    """
    path = Path(output_dir) / LOCK_FILE
    me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            who = lock_holder(output_dir)
            if who is not None:
                raise _busy(output_dir, who) from None
            logger.warning(f"{path}: taking over the lock of a process that is no longer running (a killed run)")
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as handle:
            json.dump(me, handle)
        return path
    raise OutputDirError(f"could not take the lock {path}")


def release_lock(output_dir: Path) -> None:
    path = Path(output_dir) / LOCK_FILE
    holder = _read_json(path)
    if isinstance(holder, Mapping) and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def output_dir_lock(output_dir: Path, processes: Processes):
    """Hold the output folder's lock (on the main process) for the block; every process fails alike if it is held.

    The folder is checked before the lock is created in it: a lock file is never dropped into someone else's folder.
    """
    output_dir = Path(output_dir)
    error = None
    if processes.is_main:
        try:
            check_output_dir(output_dir)
            output_dir.mkdir(parents=True, exist_ok=True)
            acquire_lock(output_dir)
        except OutputDirError as caught:
            error = caught
    message = processes.broadcast(None if error is None else str(error))
    if message is not None:
        raise error if error is not None else OutputDirError(message)
    try:
        yield
    finally:
        if processes.is_main:
            release_lock(output_dir)


# ----- shard checksums ----------------------------------------------------------------------------------------------
def checksum_path(shard: Path) -> Path:
    return shard.with_name(shard.name + ".sha256")


def record_checksum(shard: Path, written: Path | None = None) -> str:
    """Write ``shard``'s sha256 beside it (atomically): the bytes of ``written`` (the shard's temporary file, before it
    is renamed into place, so that a shard file never exists without its checksum). The run file collects them."""
    digest = file_digest(written or shard)
    write_atomically(checksum_path(shard), (digest + "\n").encode())
    return digest


def recorded_checksum(shard: Path, run: Mapping[str, Any] | None = None) -> str | None:
    """The checksum recorded when ``shard`` was written: beside it, else in the run file (a finished run's record)."""
    try:
        recorded = checksum_path(shard).read_text().strip()
    except OSError:
        recorded = ""
    return recorded or ((run or {}).get("shard_checksums") or {}).get(shard.name)


def prepare_output_dir(output_dir: Path, processes: Processes, config: SelfGenerationConfig, run: dict) -> None:
    """Refuse a folder holding another run (every process checks, so all fail alike), then, on the main process,
    clear it if ``overwrite``, drop a killed run's partial shard and record this run.

    Call it inside :func:`output_dir_lock`: a folder that holds files this package did not write is refused there.
    """
    existing = read_run_file(output_dir)
    other_run = existing is not None and existing.get("fingerprint") != run["fingerprint"]
    if other_run and not config.overwrite:
        changes = _differences(existing.get("settings", {}), run["settings"]) or ["(settings not recorded)"]
        raise GenerationConfigMismatch(
            f"{output_dir} holds a run with other settings:\n  " + "\n  ".join(changes) + "\nUse another "
            "output_dir, rerun with the original settings to resume, or pass overwrite=True (--overwrite) to delete "
            "that run's files (only those) and start over."
        )
    processes.wait()
    if processes.is_main:
        if other_run:
            logger.warning(f"overwrite: deleting the previous run's files in {output_dir}")
            clear_run(output_dir)
        elif existing is not None and existing.get("complete"):
            kept = {k: existing[k] for k in ("statistics", "shard_checksums") if k in existing}
            run = {**run, "complete": True, **kept}
        # the run file first (it is what makes the folder ours), then the shards folder
        shards_dir = output_dir / SHARDS_DIR
        for leftover in [*shards_dir.glob(f"{TMP_PREFIX}*"), *output_dir.glob(f"{TMP_PREFIX}*")]:
            shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()  # a killed run's partial writes
        write_run_file(output_dir, run)
        shards_dir.mkdir(parents=True, exist_ok=True)
    processes.wait()
