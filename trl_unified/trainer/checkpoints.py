"""Checkpoints that resume only when they are what was saved: a checksum of every file is recorded when a checkpoint
is written, and a resume checks the files it will load (present, same bytes, weights readable) before training.

`Trainer` itself skips a missing `optimizer.pt`/`scheduler.pt` silently (the schedule restarts) and loads flipped bits
as they are; here either is an error naming the file, unless `resume_allow_missing_state` asks to go on without the
optimizer/scheduler state.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from transformers.utils import logging

logger = logging.get_logger(__name__)

CHECKSUM_FILE = "trl_unified_checksums.json"
WEIGHT_FILES = (
    "model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors", "pytorch_model.bin",
    "pytorch_model.bin.index.json", "adapter_model.bin",
)  # fmt: skip
STATE_FILES = ("optimizer.pt", "scheduler.pt")
TRAINER_STATE = "trainer_state.json"


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _recorded(path: Path) -> bool:
    # Every process writes its own rng_state_<rank>.pth, possibly after the main process records: not recorded.
    return path.is_file() and path.name != CHECKSUM_FILE and not path.name.startswith("rng_state")


def record_checkpoint(folder: str | os.PathLike) -> None:
    """Write ``trl_unified_checksums.json``: the sha256 of every file of the checkpoint (main process, after saving)."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    checksums = {path.name: _digest(path) for path in sorted(folder.iterdir()) if _recorded(path)}
    tmp = folder / f".{CHECKSUM_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps({"sha256": checksums}, indent=1) + "\n")
    os.replace(tmp, folder / CHECKSUM_FILE)


def _check_safetensors(path: Path) -> None:
    """Every tensor of a safetensors file reads, and holds finite values (for a checkpoint with no checksums)."""
    import torch
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118 - a safetensors handle, not a dict
                tensor = handle.get_tensor(name)
                if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                    raise ValueError(f"checkpoint file {path}: tensor {name!r} holds NaN or infinite values")
    except ValueError:
        raise
    except Exception as error:  # noqa: BLE001 - safetensors raises its own types for a corrupt header
        raise ValueError(f"checkpoint file {path} is corrupt or not a safetensors file: {error}") from None


def verify_checkpoint(
    folder: str | os.PathLike, *, allow_missing_state: bool = False, optimizer_state: bool = True
) -> None:
    """Raise a ``ValueError`` naming the file when the checkpoint in ``folder`` is not safe to resume from.

    Checked: the folder, its weights and `trainer_state.json` exist; `optimizer.pt` and `scheduler.pt` exist (when
    ``optimizer_state``, i.e. not under DeepSpeed, which keeps its own; a missing one is only a warning with
    ``allow_missing_state``); every file recorded in ``trl_unified_checksums.json`` is there with the same bytes. A
    checkpoint saved without checksums (by another trainer) gets a readability and finiteness check of its weights.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"checkpoint {folder}: no such folder")
    if not any((folder / name).exists() for name in WEIGHT_FILES) and not any(folder.glob("global_step*")):
        raise ValueError(f"checkpoint {folder} holds no model weights (none of {', '.join(WEIGHT_FILES)})")
    if not (folder / TRAINER_STATE).is_file():
        raise ValueError(f"checkpoint {folder} has no {TRAINER_STATE}: it cannot say where training stopped")
    missing_state = [name for name in STATE_FILES if optimizer_state and not (folder / name).is_file()]
    if missing_state:
        message = f"checkpoint {folder} has no {' and no '.join(missing_state)}"
        if not allow_missing_state:
            raise ValueError(
                f"{message}: resuming would restart the optimizer and learning-rate schedule. Pass "
                "resume_allow_missing_state=True (--resume_allow_missing_state) to resume without them."
            )
        logger.warning(f"{message}; resuming without that state, as asked (resume_allow_missing_state).")

    record = folder / CHECKSUM_FILE
    if not record.is_file():
        logger.warning(f"checkpoint {folder} has no {CHECKSUM_FILE}; checking that its weights read and are finite.")
        for path in sorted(folder.glob("*.safetensors")):
            _check_safetensors(path)
        return
    try:
        checksums = json.loads(record.read_text())["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"checkpoint file {record} is unreadable: {error}") from None
    for name, expected in sorted(checksums.items()):
        path = folder / name
        if not path.is_file():
            if name in STATE_FILES and allow_missing_state:
                continue
            raise ValueError(f"checkpoint file {path} is missing (it was saved with the checkpoint)")
        if _digest(path) != expected:
            raise ValueError(f"checkpoint file {path} is corrupt: its bytes differ from those saved (sha256 mismatch)")


__all__ = ["CHECKSUM_FILE", "record_checkpoint", "verify_checkpoint"]
