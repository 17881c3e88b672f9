"""Prompt tables for self-generation: read from a file, a ``save_to_disk`` folder or the Hub, or built from Python
lists, and normalised to ``prompt`` + a unique ``prompt_id`` + the source's other columns."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from datasets import Dataset

from .schema import is_reserved


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
    if path.suffix.lower() in (".txt", ".text", ".prompts"):
        if not path.is_file():
            raise ValueError(f"prompts file {source}: no such file.")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"prompts file {source} is not UTF-8 text ({error}).") from None
        lines = [line.strip() for line in text.splitlines()]
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
    clashes = [c for c in extras if is_reserved(c)]
    if clashes:
        raise ValueError(
            f"The prompts' columns {clashes} would clash with self-generation output columns; remove or rename them."
        )
    return dataset.select_columns(["prompt", "prompt_id", *extras])


def prompt_table(config: Any, prompts: Any = None) -> Dataset:
    """The prompt table of a self-generation run: ``prompts`` if given, else ``config.prompts``, read with the
    config's column, split and size options (a :class:`SelfGenerationConfig`); an empty table is an error."""
    source = prompts if prompts is not None else config.prompts
    if source is None:
        raise ValueError("no prompts: pass `prompts` or set config.prompts (--prompts)")
    table = prepare_prompts(
        source,
        prompt_column=config.prompt_column,
        prompt_id_column=config.prompt_id_column,
        max_prompts=config.max_prompts,
        split=config.prompts_split,
        config_name=config.prompts_config,
    )
    if len(table) == 0:
        name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "the prompts"
        raise ValueError(f"{name} holds no prompts")
    return table
