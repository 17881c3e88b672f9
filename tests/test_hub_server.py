"""The local Hub server (`tests/hub_server.py`): a real HTTP round trip through each route it keeps, no network."""

import os

import pytest
import torch
from datasets import Dataset, load_dataset
from huggingface_hub import DatasetCard, HfApi, constants, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError
from huggingface_hub.utils import get_session
from transformers import AutoModelForCausalLM

from trl_unified.testing.causal_lm import tiny_causal_lm


def test_libraries_point_at_the_server(local_hub):
    assert os.environ["HF_ENDPOINT"] == constants.ENDPOINT == local_hub.url
    assert not constants.is_offline_mode() and constants.HF_HUB_DISABLE_XET


def test_upload_and_download_files(local_hub, tmp_path):
    """create (and 409 with exist_ok), preupload, regular + LFS commit, repo info, tree, resolve."""
    content = {"config.json": b'{"a": 1}', "nested/notes.txt": "h\u00e9llo\n".encode(), "weights.bin": bytes(256) * 4}
    for name, data in content.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(data)
    api = HfApi()
    repo_id = api.create_repo("folder").repo_id
    assert repo_id == "test-user/folder" and api.create_repo(repo_id, exist_ok=True).repo_id == repo_id
    commit = api.upload_folder(repo_id=repo_id, folder_path=tmp_path)

    assert local_hub.files(repo_id) == content
    assert api.model_info(repo_id).sha == commit.oid
    assert {s.rfilename for s in api.model_info(repo_id, revision=commit.oid).siblings} == set(content)
    assert sorted(api.list_repo_files(repo_id)) == sorted(content)
    tree = {entry.path: entry for entry in api.list_repo_tree(repo_id)}
    assert set(tree) == {"config.json", "nested", "weights.bin"} and tree["weights.bin"].lfs.size == 1024
    assert tree["config.json"].lfs is None  # small text goes in the commit itself, binaries through LFS
    for name, data in content.items():
        with open(hf_hub_download(repo_id, name), "rb") as f:
            assert f.read() == data


def test_errors_are_the_hubs(local_hub):
    api = HfApi()
    repo_id = api.create_repo("errors").repo_id
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("test-user/does-not-exist")
    with pytest.raises(RevisionNotFoundError):
        api.model_info(repo_id, revision="0" * 40)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_id, "missing.txt")
    with pytest.raises(HfHubHTTPError) as wrong_token:
        HfApi(token="hf_wrong").upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    assert wrong_token.value.response.status_code == 401 and local_hub.files(repo_id) == {}


def test_unknown_route_is_reported(local_hub):
    response = get_session().get(f"{local_hub.url}/api/spaces/test-user/app")
    assert response.status_code == 404 and "no route for GET /api/spaces/test-user/app" in response.json()["error"]
    assert local_hub.unhandled == ["GET /api/spaces/test-user/app"]
    local_hub.unhandled.clear()


def test_model_push_to_hub_and_from_pretrained(local_hub):
    model, _ = tiny_causal_lm(seed=0)
    model.push_to_hub("test-user/tiny-lm")
    assert {"config.json", "model.safetensors"} <= set(local_hub.files("test-user/tiny-lm"))
    loaded = AutoModelForCausalLM.from_pretrained("test-user/tiny-lm")
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)


def test_dataset_push_to_hub_and_read_back(local_hub, tmp_path):
    """Dataset.push_to_hub twice (the second reads the card and the tree back), then three ways of reading it."""
    repo_id = "test-user/tiny-ds"
    train, test = {"prompt": ["a", "bb", "ccc"], "score": [1.0, 2.5, -3.0]}, {"prompt": ["z"], "score": [0.0]}
    Dataset.from_dict(train).push_to_hub(repo_id)
    Dataset.from_dict(test).push_to_hub(repo_id, split="test")
    files = local_hub.files(repo_id, repo_type="dataset")
    shards = sorted(name for name in files if name.endswith(".parquet"))
    assert [name.split("-")[0] for name in shards] == ["data/test", "data/train"]
    splits = DatasetCard(files["README.md"].decode()).data.to_dict()["dataset_info"]["splits"]
    assert {split["name"]: split["num_examples"] for split in splits} == {"train": 3, "test": 1}  # the card was merged

    loaded = load_dataset(repo_id)
    assert loaded["train"].to_dict() == train and loaded["test"].to_dict() == test
    downloaded = [hf_hub_download(repo_id, name, repo_type="dataset") for name in shards]
    assert load_dataset("parquet", data_files=downloaded[1:], split="train").to_dict() == train
    hf_path = f"hf://datasets/{repo_id}/{shards[0]}"
    assert load_dataset("parquet", data_files=hf_path, split="train").to_dict() == test
