"""Load a dataset from wherever users keep one: a Hub id, a `save_to_disk` folder, or JSONL/JSON/Parquet/CSV files."""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset, DatasetDict, load_dataset, load_from_disk

FILE_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


def load_any_dataset(name_or_path: str, split: str = "train", config: str | None = None) -> Dataset:
    """One split of a dataset named by a Hub id, a `save_to_disk` folder, a data file or a folder of data files."""
    path = Path(name_or_path)
    if path.is_dir() and ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()):
        loaded = load_from_disk(str(path))
        if isinstance(loaded, DatasetDict):
            if split not in loaded:
                raise ValueError(f"{name_or_path} has no split {split!r}; it has {sorted(loaded)}.")
            return loaded[split]
        return loaded
    if path.is_file():
        builder = FILE_BUILDERS.get(path.suffix)
        if builder is None:
            raise ValueError(f"Cannot read {name_or_path}: use one of {sorted(FILE_BUILDERS)} or a dataset folder.")
        return load_dataset(builder, data_files=str(path), split="train")
    return load_dataset(name_or_path, config, split=split)
