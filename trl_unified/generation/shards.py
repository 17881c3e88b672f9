"""Shards: each holds the samples of a fixed block of prompts, is written atomically (complete or absent), and the
finished shards are assembled into one ``save_to_disk`` dataset in the output folder."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from datasets import Dataset, Features, load_from_disk
from transformers.utils import logging

from .run_state import DATASET_FILES, SHARDS_DIR, TMP_PREFIX, file_digest, record_checksum, recorded_checksum

logger = logging.get_logger(__name__)


def shard_path(output_dir: str | os.PathLike, index: int, num_shards: int) -> Path:
    return Path(output_dir) / SHARDS_DIR / f"shard-{index:05d}-of-{num_shards:05d}.parquet"


def shard_rows(index: int, shard_size: int, num_prompts: int) -> range:
    return range(index * shard_size, min((index + 1) * shard_size, num_prompts))


def shard_complete(path: Path, expected_rows: int, run: dict | None = None) -> bool:
    """Whether ``path`` is a finished shard: its bytes match the checksum recorded when it was written, and it has
    ``expected_rows`` rows. Anything else (absent, no checksum, corrupted anywhere in the file) is generated again."""
    if not path.exists():
        return False
    recorded = recorded_checksum(path, run)
    if recorded is None:
        logger.warning(f"{path} has no recorded checksum (its writer was killed); it will be generated again.")
        return False
    if file_digest(path) != recorded:
        logger.warning(f"{path} does not match its recorded checksum (corrupted); it will be generated again.")
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


def write_shard(dataset: Dataset, path: Path) -> str:
    """Write to a temporary name in the same folder, record its checksum beside the shard's name, then rename: a shard
    file is complete or absent, and never without its checksum (a killed writer leaves at most a checksum that matches
    no file, and the shard is generated again). Returns the checksum."""
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{os.getpid()}")
    try:
        dataset.to_parquet(str(tmp))
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        digest = record_checksum(path, written=tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return digest


@contextlib.contextmanager
def datasets_progress_bars(enabled: bool):
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


def assemble(output_dir: Path, files: list[Path], features: Features) -> Dataset:
    """Shards -> one dataset saved with ``save_to_disk`` in ``output_dir`` (files moved in by rename)."""
    work = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}assemble-", dir=output_dir))
    try:
        dataset = Dataset.from_parquet([str(f) for f in files], features=features, cache_dir=str(work / "cache"))
        dataset.save_to_disk(str(work / "dataset"))
        del dataset
        written = sorted(p.name for p in (work / "dataset").iterdir())
        for stale in output_dir.glob("data-*.arrow"):
            if stale.name not in written:
                stale.unlink()
        # Data files first, state.json last: renames keep any earlier, still memory-mapped version readable.
        for name in sorted(written, key=lambda n: n in DATASET_FILES):
            os.replace(work / "dataset" / name, output_dir / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return load_from_disk(str(output_dir))
