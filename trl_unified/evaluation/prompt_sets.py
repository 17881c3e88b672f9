"""Categorised prompt sets: what an evaluation samples from, and what a targeted pool must stay away from.

:func:`load_prompt_set` reads

* a ``.txt`` file: one prompt per line (blank lines skipped); a line ``<category><TAB><prompt>`` names its category,
  otherwise ``categorize(prompt)`` does (default: the category ``all``);
* a ``.jsonl`` file: one object per line with ``prompt`` and ``category`` (column names configurable). GenEval's
  ``evaluation_metadata.jsonl`` reads as it is: its ``tag`` is the category, and every row is kept as that prompt's
  ``metadata`` (``include``, ``exclude``, ...), which the GenEval output layout writes back beside the images;
* anything ``datasets`` loads (a Hub id, a ``save_to_disk`` folder, JSON/Parquet/CSV files) with a prompt and a
  category column;
* a list of strings, a list of dicts or a ``datasets.Dataset``.

Bad rows raise ``ValueError`` naming the file and line (or row) -- nothing is dropped silently.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CATEGORY = "all"
GENEVAL_CATEGORY_COLUMN = "tag"


@dataclass
class PromptSet:
    """Prompts with one category each and, per prompt, the source row it came from (``metadata``)."""

    prompts: list[str]
    categories: list[str]
    metadata: list[dict[str, Any]] = field(default_factory=list)
    source: str | None = None

    def __post_init__(self):
        if len(self.prompts) != len(self.categories):
            raise ValueError(f"{len(self.prompts)} prompts but {len(self.categories)} categories")
        if not self.metadata:
            self.metadata = [{"prompt": p, "category": c} for p, c in zip(self.prompts, self.categories)]
        if len(self.metadata) != len(self.prompts):
            raise ValueError(f"{len(self.prompts)} prompts but {len(self.metadata)} metadata rows")

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def category_names(self) -> list[str]:
        """The categories in order of first appearance."""
        return list(dict.fromkeys(self.categories))

    def by_category(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for prompt, category in zip(self.prompts, self.categories):
            out.setdefault(category, []).append(prompt)
        return out

    def to_rows(self) -> list[dict[str, Any]]:
        return [{"prompt": p, "category": c} for p, c in zip(self.prompts, self.categories)]


def _check(prompt: Any, category: Any, where: str) -> tuple[str, str]:
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"{where}: the prompt must be a non-empty string, got {prompt!r}")
    if not isinstance(category, str) or not category.strip():
        raise ValueError(f"{where}: the category must be a non-empty string, got {category!r}")
    return prompt.strip(), category.strip()


def _categorized(prompt: Any, category: Any, categorize: Callable[[str], str] | None, where: str) -> tuple[str, str]:
    if category is None and isinstance(prompt, str) and prompt.strip():
        try:
            category = categorize(prompt.strip()) if categorize else DEFAULT_CATEGORY
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
    return _check(prompt, category, where)


def _from_rows(
    rows: Iterable[Mapping[str, Any]],
    where: Callable[[int], str],
    prompt_column: str,
    category_column: str,
    categorize: Callable[[str], str] | None,
) -> tuple[list[str], list[str], list[dict]]:
    prompts, categories, metadata = [], [], []
    rows = list(rows)

    def category_of(row: Mapping[str, Any]) -> Any:
        category = row.get(category_column)
        if category is None and category_column == "category":  # GenEval metadata: `tag` is the category
            category = row.get(GENEVAL_CATEGORY_COLUMN)
        return category

    # Rows without a category get the default one only when no row has one; a missing value among named ones is
    # an error, not a new category.
    some_named = categorize is None and any(category_of(row) is not None for row in rows)
    for i, row in enumerate(rows):
        if prompt_column not in row:
            raise ValueError(f"{where(i)}: no {prompt_column!r} field (it has {sorted(row)})")
        category = category_of(row)
        if category is None and some_named:
            raise ValueError(f"{where(i)}: the category ({category_column!r}) is missing")
        named = category is not None
        prompt, category = _categorized(row[prompt_column], category, categorize, where(i))
        prompts.append(prompt)
        categories.append(category)
        metadata.append(dict(row) if named else {**row, "category": category})
    return prompts, categories, metadata


def load_prompt_set(
    source: str | os.PathLike | Sequence[str] | Sequence[Mapping[str, Any]] | Any,
    *,
    prompt_column: str = "prompt",
    category_column: str = "category",
    categorize: Callable[[str], str] | None = None,
    split: str = "train",
    config_name: str | None = None,
    max_prompts: int | None = None,
) -> PromptSet:
    """Read a categorised prompt set (see the module docstring). ``categorize`` names the category of a prompt that
    has none (and may raise ``ValueError`` to reject a prompt)."""
    if isinstance(source, PromptSet):
        return source
    name = None
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        path = Path(name)
        if path.is_file() and path.suffix.lower() in (".txt", ".text", ".prompts"):
            prompts, categories = [], []
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                category, tab, text = line.partition("\t")
                prompt, category = (text, category) if tab else (line, None)
                prompt, category = _categorized(prompt, category, categorize, f"{name}, line {number}")
                prompts.append(prompt)
                categories.append(category)
            prompt_set = PromptSet(prompts, categories, source=name)
        elif path.is_file() and path.suffix.lower() == ".jsonl":
            rows, numbers = [], []
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(f"{name}, line {number}: not JSON ({err})") from None
                if not isinstance(row, dict):
                    raise TypeError(f"{name}, line {number}: expected a JSON object, got {type(row).__name__}")
                rows.append(row)
                numbers.append(number)
            columns = _from_rows(
                rows, lambda i: f"{name}, line {numbers[i]}", prompt_column, category_column, categorize
            )
            prompt_set = PromptSet(*columns, source=name)
        else:
            from ..data.loading import load_any_dataset

            dataset = load_any_dataset(name, split, config_name)
            columns = _from_rows(dataset, lambda i: f"{name}, row {i}", prompt_column, category_column, categorize)
            prompt_set = PromptSet(*columns, source=name)
    else:
        items = list(source)
        if all(isinstance(item, str) for item in items):
            items = [{prompt_column: item} for item in items]
        elif not all(isinstance(item, Mapping) for item in items):
            raise TypeError("prompts must be a path, a Hub id, a datasets.Dataset, or a list of strings or of dicts")
        prompt_set = PromptSet(*_from_rows(items, lambda i: f"prompt {i}", prompt_column, category_column, categorize))
    if max_prompts is not None:
        prompt_set = PromptSet(
            prompt_set.prompts[:max_prompts],
            prompt_set.categories[:max_prompts],
            prompt_set.metadata[:max_prompts],
            prompt_set.source,
        )
    if not prompt_set.prompts:
        raise ValueError(f"the prompt set {name or ''} holds no prompt".replace("  ", " "))
    return prompt_set


__all__ = ["DEFAULT_CATEGORY", "PromptSet", "load_prompt_set"]
