"""Publishing a self-generated dataset on the Hub: the card and the run file, then the data."""

from __future__ import annotations

import os
from pathlib import Path

from datasets import Dataset

from .run_state import CARD_FILE, RUN_FILE


def push_dataset_to_hub(
    dataset: Dataset, output_dir: str | os.PathLike, repo_id: str, private: bool | None = None
) -> str:
    """Push the card (``README.md``) and ``trl_unified_run.json``, then the data (``Dataset.push_to_hub`` merges its
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
