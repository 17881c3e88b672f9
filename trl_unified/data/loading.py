"""Load a dataset from wherever users keep one: a Hub id, a `save_to_disk` folder, or JSONL/JSON/Parquet/CSV files.

Nothing is loaded silently wrong: a split that does not exist is an error (a single file or a `save_to_disk`
dataset has only `train`), and a self-generation output folder whose run did not finish is refused (with how many
shards are missing) unless ``allow_incomplete`` asks for its finished shards.
"""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset, DatasetDict, load_dataset, load_from_disk
from transformers.utils import logging

logger = logging.get_logger(__name__)

FILE_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


def _only_train(name_or_path: str, split: str, what: str) -> None:
    if split != "train":
        raise ValueError(f"{name_or_path} is {what} with one split, 'train'; there is no split {split!r}.")


def _self_generation_run(path: Path, run: dict, allow_incomplete: bool) -> Dataset:
    """A self-generation output folder: a finished run's assembled dataset, else (if allowed) its finished shards."""
    from ..generation.run_state import SHARDS_DIR, file_digest, recorded_checksum

    if run.get("complete") and (path / "dataset_info.json").exists():
        return load_from_disk(str(path))
    num_shards = int(run.get("num_shards") or 0)
    shards = sorted((path / SHARDS_DIR).glob(f"shard-*-of-{num_shards:05d}.parquet"))
    finished = [shard for shard in shards if recorded_checksum(shard, run) == file_digest(shard)]
    missing = num_shards - len(finished)
    if not allow_incomplete and missing == 0:
        raise ValueError(
            f"{path} holds a self-generation run whose {num_shards} shards are all there but not assembled into a "
            "dataset; rerun `trl-unified generate` with the same arguments to assemble it (nothing is generated again)."
        )
    if not allow_incomplete:
        raise ValueError(
            f"{path} holds an unfinished self-generation run: {missing} of {num_shards} shards missing "
            f"({len(finished)} finished). Rerun `trl-unified generate` with the same arguments to finish it, or ask "
            "for the finished part explicitly (--dataset_allow_incomplete, load_any_dataset(allow_incomplete=True))."
        )
    if not finished:
        raise ValueError(f"{path} holds an unfinished self-generation run, no shard finished ({num_shards} missing)")
    logger.warning(f"{path}: loading the {len(finished)} finished shards of {num_shards} ({missing} missing), as asked")
    return Dataset.from_parquet([str(shard) for shard in finished])


def load_any_dataset(
    name_or_path: str, split: str = "train", config: str | None = None, *, allow_incomplete: bool = False
) -> Dataset:
    """One split of a dataset named by a Hub id, a `save_to_disk` folder, a data file or a folder of data files.

    ``allow_incomplete``: for a self-generation output folder whose run did not finish, load its finished shards
    (otherwise an error says how many are missing).
    """
    from ..generation.run_state import read_run_file

    path = Path(name_or_path)
    if path.is_dir():
        run = read_run_file(path)
        if run is not None:
            _only_train(name_or_path, split, "a self-generated dataset")
            return _self_generation_run(path, run, allow_incomplete)
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
            loaded = load_from_disk(str(path))
            if isinstance(loaded, DatasetDict):
                if split not in loaded:
                    raise ValueError(f"{name_or_path} has no split {split!r}; it has {sorted(loaded)}.")
                return loaded[split]
            _only_train(name_or_path, split, "a `save_to_disk` dataset")
            return loaded
    if path.is_file():
        builder = FILE_BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise ValueError(f"Cannot read {name_or_path}: use one of {sorted(FILE_BUILDERS)} or a dataset folder.")
        _only_train(name_or_path, split, "a single data file")
        try:
            return load_dataset(builder, data_files=str(path), split="train")
        except Exception as error:
            cause = error.__cause__ or error
            raise ValueError(f"Cannot read {name_or_path} as {builder}: {type(cause).__name__}: {cause}") from error
    looks_local = path.is_absolute() or name_or_path.startswith((".", "~")) or path.suffix in FILE_BUILDERS
    if not path.exists() and looks_local:
        raise ValueError(f"{name_or_path}: no such file or folder.")
    try:
        return load_dataset(name_or_path, config, split=split)
    except ValueError as error:
        if "split" in str(error).lower():
            raise ValueError(f"{name_or_path} has no split {split!r} ({error}).") from error
        raise
    except FileNotFoundError as error:
        raise ValueError(f"{name_or_path}: not a file or folder here, and not a Hub dataset ({error}).") from error
