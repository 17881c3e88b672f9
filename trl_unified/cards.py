"""What the model and dataset cards share: Hub ids of local models and datasets, licences read from cards, the
source study's citation and the quick-start code.

The cards are written offline. A model or dataset that came from the Hub is recognised by its name (a repo id) or
by where it lies (the Hub cache, ``models--org--name/snapshots/<commit>``; the datasets cache,
``org___name/<config>/...``); a self-generated dataset by the run file (``trl_unified_run.json``) in its folder.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

SOURCE_STUDY = "2601.04339"
SOURCE_STUDY_TITLE = "Unified Text-Image Generation with Weakness-Targeted Post-Training"
#: The source study (arXiv, submitted 7 January 2026).
SOURCE_STUDY_BIBTEX = f"""@misc{{chen2026unified,
  title         = {{{{{SOURCE_STUDY_TITLE}}}}},
  author        = {{Chen, Jiahui and Hansen-Estruch, Philippe and Han, Xiaochuang and Hu, Yushi and Dinan, Emily
                   and Kamath, Amita and Drozdzal, Michal and Askari-Hemmat, Reyhane and Zettlemoyer, Luke
                   and Ghazvininejad, Marjan}},
  eprint        = {{{SOURCE_STUDY}}},
  archivePrefix = {{arXiv}},
  primaryClass  = {{cs.CV}},
  year          = {{2026}},
  url           = {{https://arxiv.org/abs/{SOURCE_STUDY}}}
}}"""
TRL_BIBTEX = """@software{vonwerra2020trl,
  title   = {{TRL: Transformers Reinforcement Learning}},
  author  = {von Werra, Leandro and Belkada, Younes and Tunstall, Lewis and Beeching, Edward and Thrush, Tristan
             and Lambert, Nathan and Huang, Shengyi and Rasul, Kashif and Gallouédec, Quentin},
  license = {Apache-2.0},
  url     = {https://github.com/huggingface/trl},
  year    = {2020}
}"""

RUN_FILE = "trl_unified_run.json"  # what self-generation writes beside its dataset (see generation/run_state.py)
#: its name before the rename (it clashed with transformers' file): read only when its keys show that it is ours
LEGACY_RUN_FILE = "generation_config.json"
_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
_HUB_CACHE_DIR = re.compile(r"^(models|datasets)--([\w.-]+)--([\w.-]+)$")


def as_repo_id(name: str) -> str | None:
    """``name`` if it is a Hub repo id (``org/name``) and not a local path, else None."""
    if not name or os.path.exists(name) or not _REPO_ID.match(name):
        return None
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return None
    return name


def hub_id_of(name_or_path: str | None) -> str | None:
    """The Hub repo id a model or dataset came from: its name, or the repo of a Hub-cache snapshot folder."""
    if not name_or_path:
        return None
    name_or_path = os.fspath(name_or_path)
    if repo := as_repo_id(name_or_path):
        return repo
    parts = Path(name_or_path).resolve().parts
    for i, part in enumerate(parts[:-2]):
        match = _HUB_CACHE_DIR.match(part)
        if match and parts[i + 1] == "snapshots":
            return f"{match[2]}/{match[3]}"
    return None


def model_name_or_path(model: Any, processing_class: Any = None) -> str | None:
    """What a model instance was loaded from: its config's ``_name_or_path``, else its processor's ``name_or_path``."""
    from .models.base import unwrap_model

    config = getattr(unwrap_model(model), "config", None)
    name = getattr(config, "_name_or_path", None) or getattr(processing_class, "name_or_path", None)
    return str(name) if name else None


def card_license(name_or_path: str | None, repo_type: str = "model") -> dict[str, str]:
    """``license`` (and ``license_name``/``license_link`` for ``other``) from the card of a local folder, of a Hub
    repo already in the cache or, when the Hub can be reached, of the Hub repo; ``{}`` when none is found.

    Read once per process and name (cards are rewritten at every checkpoint)."""
    return dict(_card_license(os.fspath(name_or_path), repo_type)) if name_or_path else {}


@functools.lru_cache(maxsize=64)
def _card_license(name_or_path: str, repo_type: str) -> tuple[tuple[str, str], ...]:
    from huggingface_hub import DatasetCard, ModelCard, constants, try_to_load_from_cache

    card_class = DatasetCard if repo_type == "dataset" else ModelCard
    path = Path(name_or_path) / "README.md"
    repo = hub_id_of(name_or_path)
    card = None
    try:
        if path.is_file():
            card = card_class.load(path)
        elif repo:
            cached = try_to_load_from_cache(repo, "README.md", repo_type=repo_type)
            if isinstance(cached, str):
                card = card_class.load(cached)
            elif not constants.HF_HUB_OFFLINE:
                card = card_class.load(repo, repo_type=repo_type)
    except Exception:  # noqa: BLE001 - no card, no licence: the card then says so
        return ()
    data = card.data.to_dict() if card is not None else {}
    return tuple((key, str(data[key])) for key in ("license", "license_name", "license_link") if data.get(key))


# ----- training data ----------------------------------------------------------------------------------------------
def dataset_origin(dataset: Any) -> dict[str, Any]:
    """Where a ``datasets.Dataset`` came from, read from its cache files: ``hub_id`` (loaded from the Hub, or a
    self-generated dataset that was pushed), ``path`` (a ``save_to_disk`` folder) and ``run`` (a self-generated
    dataset's run file). ``{}`` for an in-memory dataset."""
    files = [f["filename"] for f in getattr(dataset, "cache_files", None) or []]
    if not files:
        return {}
    file = Path(files[0])
    folder = file.parent
    run = next((r for r in (_read_run(folder / name) for name in (RUN_FILE, LEGACY_RUN_FILE)) if r), None)
    if run is not None:
        return {"hub_id": run.get("hub_dataset_id"), "path": str(folder), "run": run}
    if (folder / "dataset_info.json").is_file() and (folder / "state.json").is_file():
        return {"path": str(folder)}
    parts = file.parts  # the datasets cache: <cache>/<org>___<name>/<config>/<version>/<hash>/<file>.arrow
    if len(parts) >= 5 and "___" in parts[-5]:
        repo = as_repo_id(parts[-5].replace("___", "/", 1))
        if repo:
            run = _hub_run_file(repo)
            return {"hub_id": repo, "config": parts[-4], **({"run": run} if run else {})}
    return {}


def _read_run(path: Path) -> dict[str, Any] | None:
    """A self-generation run file's content, or None (absent, unreadable, or another tool's file of that name)."""
    try:
        with open(path, encoding="utf-8") as handle:
            run = json.load(handle)
    except (OSError, ValueError):
        return None
    ours = isinstance(run, dict) and "fingerprint" in run and isinstance(run.get("settings"), dict)
    return run if ours else None


def _hub_run_file(repo_id: str) -> dict[str, Any] | None:
    """The run file of a self-generated dataset on the Hub (None for other datasets, or offline)."""
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache

    for name in (RUN_FILE, LEGACY_RUN_FILE):
        try:
            path = try_to_load_from_cache(repo_id, name, repo_type="dataset")
            if not isinstance(path, str) and not constants.HF_HUB_OFFLINE:
                path = hf_hub_download(repo_id, name, repo_type="dataset")
        except Exception:  # noqa: BLE001, S112 - not a self-generated dataset (no such file), or the Hub is away
            continue
        run = _read_run(Path(path)) if isinstance(path, str) else None
        if run is not None:
            return run
    return None


def reward_means(dataset: Any, columns: Mapping[str, str | None]) -> dict[str, float]:
    """``{column: mean}`` of the finite values of each named reward column present in ``dataset``."""
    import numpy as np

    means = {}
    for column in dict.fromkeys(c for c in columns.values() if c):
        if column in getattr(dataset, "column_names", ()):
            # runs before the rows are checked: anything but a number (None, a string) counts as missing here
            numbers = [
                v if isinstance(v, (int, float)) and not isinstance(v, bool) else np.nan for v in dataset[column]
            ]
            values = np.asarray(numbers, dtype=np.float64)
            finite = values[np.isfinite(values)]
            if len(finite):
                means[column] = float(finite.mean())
    return means


# ----- quick start ------------------------------------------------------------------------------------------------
QUICK_START = "quick_start.py"
_ASSIGNMENT = re.compile(r"^(base_model|adapter|prompt|output_dir) = .*$", re.MULTILINE)


def quick_start_code(base_model: str, adapter: str, prompt: str, output_dir: str = ".") -> str:
    """The quick start of the model cards (``templates/quick_start.py``) with its four settings filled in.

    ``examples/scripts/generate_with_adapter.py`` runs exactly this code, and a test runs that script on a tiny
    model: the code a card shows is code that ran.
    """
    source = resources.files("trl_unified").joinpath("templates", QUICK_START).read_text(encoding="utf-8")
    values = {"base_model": base_model, "adapter": adapter, "prompt": prompt, "output_dir": output_dir}
    found = set(_ASSIGNMENT.findall(source))
    if found != set(values):
        raise RuntimeError(f"{QUICK_START} must assign {sorted(values)} once each at the start of a line")
    # JSON string literals are Python string literals (double quotes, as in the rest of the snippet)
    return _ASSIGNMENT.sub(lambda m: f"{m[1]} = {json.dumps(values[m[1]], ensure_ascii=False)}", source)


__all__ = [
    "SOURCE_STUDY",
    "SOURCE_STUDY_BIBTEX",
    "TRL_BIBTEX",
    "as_repo_id",
    "card_license",
    "dataset_origin",
    "hub_id_of",
    "model_name_or_path",
    "quick_start_code",
    "reward_means",
]
