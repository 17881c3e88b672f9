"""Tests for the in-process Hub server (`tests/hub_server.py`): real push_to_hub / download round-trips, no network."""

from __future__ import annotations

import socket

import pytest

from hub_server import LocalHubServer, local_hub  # noqa: F401  (fixture import, works without conftest changes)


def _non_attr_files(files: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in files.items() if k != ".gitattributes"}


def test_env_and_constants_point_to_server(local_hub):
    import os

    from huggingface_hub import HfApi, constants, hf_api, whoami

    assert os.environ["HF_ENDPOINT"] == local_hub.url
    assert constants.ENDPOINT == local_hub.url
    assert constants.HUGGINGFACE_CO_URL_TEMPLATE.startswith(local_hub.url + "/")
    assert hf_api.api.endpoint == local_hub.url
    assert constants.is_offline_mode() is False
    assert HfApi().whoami()["name"] == local_hub.username
    assert whoami()["name"] == local_hub.username  # module-level function -> module-level HfApi instance


def test_upload_folder_and_read_back(local_hub, tmp_path):
    from huggingface_hub import HfApi, create_repo, hf_hub_download

    content = {
        "README.md": b"# tiny\n",
        "config.json": b'{"a": 1}',
        "nested/deeper/notes.txt": "h\u00e9llo w\u00f6rld\n".encode(),
        "weights.bin": bytes(range(256)) * 40,  # binary + *.bin -> LFS upload flow
    }
    for rel, data in content.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)

    repo_url = create_repo("folder-repo", exist_ok=True, private=True)
    assert repo_url.repo_id == f"{local_hub.username}/folder-repo"
    api = HfApi()
    info = api.upload_folder(repo_id=repo_url.repo_id, folder_path=tmp_path, commit_message="add folder")

    assert _non_attr_files(local_hub.files(repo_url.repo_id)) == content
    assert local_hub.file_info(repo_url.repo_id, "weights.bin")["lfs"] is True
    assert local_hub.file_info(repo_url.repo_id, "config.json")["lfs"] is False
    assert local_hub.commit_log[-1]["title"] == "add folder"
    assert local_hub.commit_log[-1]["oid"] == info.oid
    assert api.model_info(repo_url.repo_id).sha == info.oid
    assert sorted(api.list_repo_files(repo_url.repo_id)) == sorted([".gitattributes", *content])

    for rel, data in content.items():
        path = hf_hub_download(repo_url.repo_id, rel)
        with open(path, "rb") as f:
            assert f.read() == data

    # upload_file + delete through create_commit, on a dataset repo
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    ds = api.create_repo("ds-repo", repo_type="dataset", exist_ok=True).repo_id
    api.upload_file(path_or_fileobj=b"x,y\n1,2\n", path_in_repo="data.csv", repo_id=ds, repo_type="dataset")
    api.create_commit(
        ds,
        operations=[
            CommitOperationAdd("other.txt", b"other"),
            CommitOperationDelete("data.csv"),
        ],
        commit_message="swap",
        repo_type="dataset",
    )
    assert _non_attr_files(local_hub.files(ds, repo_type="dataset")) == {"other.txt": b"other"}
    assert api.dataset_info(ds).sha == local_hub.head(ds, repo_type="dataset")
    assert local_hub.unhandled == [] and local_hub.errors == []


def test_errors_map_to_hub_exceptions(local_hub):
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    local_hub.add_files("seeded", {"a.txt": "a"})
    api = HfApi()
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(f"{local_hub.username}/does-not-exist")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(f"{local_hub.username}/seeded", "missing.txt")
    with pytest.raises(RevisionNotFoundError):
        api.model_info(f"{local_hub.username}/seeded", revision="no-such-branch")
    with pytest.raises(HfHubHTTPError) as exc:
        HfApi(token="wrong-token").create_repo("nope")
    assert exc.value.response.status_code == 401
    assert not local_hub.repo_exists(f"{local_hub.username}/nope")


def test_unknown_endpoint_is_reported(local_hub):
    from huggingface_hub.utils import get_session

    response = get_session().get(f"{local_hub.url}/api/does-not-exist/really")
    assert response.status_code == 404
    assert "no route for GET /api/does-not-exist/really" in response.json()["error"]
    assert local_hub.unhandled == ["GET /api/does-not-exist/really"]


def test_server_shuts_down_and_frees_port():
    with LocalHubServer() as server:
        port = int(server.url.rsplit(":", 1)[1])
        root = server.root
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass  # an idle keep-alive style connection must not block stop()
        idle = socket.create_connection(("127.0.0.1", port), timeout=2)
    try:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        idle.close()
    assert not root.exists()  # temp root of a server created without `root=` is removed


def _tiny_llama():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=32,
    )
    return LlamaForCausalLM(config).eval()


def test_transformers_push_to_hub_and_from_pretrained(local_hub):
    import torch
    from transformers import LlamaForCausalLM

    model = _tiny_llama()
    model.push_to_hub("tiny-llama")
    repo_id = f"{local_hub.username}/tiny-llama"

    files = local_hub.files(repo_id)
    assert "config.json" in files and "model.safetensors" in files
    assert local_hub.file_info(repo_id, "model.safetensors")["lfs"] is True

    loaded = LlamaForCausalLM.from_pretrained(repo_id).eval()
    reference = model.state_dict()
    loaded_state = loaded.state_dict()
    assert reference.keys() == loaded_state.keys()
    for key, tensor in reference.items():
        assert torch.equal(tensor, loaded_state[key]), key
    assert local_hub.unhandled == [] and local_hub.errors == []


def test_peft_push_to_hub_and_from_pretrained(local_hub):
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model

    base = _tiny_llama()
    peft_model = get_peft_model(
        base, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    ).eval()
    inputs = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        expected = peft_model(input_ids=inputs).logits
        base_only = peft_model.get_base_model()
        with peft_model.disable_adapter():
            without_adapter = base_only(input_ids=inputs).logits
    assert not torch.allclose(expected, without_adapter)  # the adapter really changes outputs

    peft_model.push_to_hub("tiny-lora")
    repo_id = f"{local_hub.username}/tiny-lora"
    files = local_hub.files(repo_id)
    assert "adapter_config.json" in files and "adapter_model.safetensors" in files

    fresh_base = _tiny_llama()  # same seed -> same base weights
    reloaded = PeftModel.from_pretrained(fresh_base, repo_id).eval()
    with torch.no_grad():
        got = reloaded(input_ids=inputs).logits
    torch.testing.assert_close(got, expected)
    assert local_hub.unhandled == [] and local_hub.errors == []


def test_datasets_push_to_hub_and_load(local_hub, tmp_path):
    import pyarrow.parquet as pq
    from datasets import Dataset, load_dataset
    from huggingface_hub import hf_hub_download

    rows = {"prompt": ["a", "bb", "ccc"], "score": [1.0, 2.5, -3.0]}
    Dataset.from_dict(rows).push_to_hub("tiny-ds")
    repo_id = f"{local_hub.username}/tiny-ds"

    files = local_hub.files(repo_id, repo_type="dataset")
    parquet_files = sorted(p for p in files if p.endswith(".parquet"))
    assert parquet_files and all(p.startswith("data/train-") for p in parquet_files)
    assert "README.md" in files and b"dataset_info" in files["README.md"]

    # read back through the resolve endpoint
    table = pq.read_table(hf_hub_download(repo_id, parquet_files[0], repo_type="dataset"))
    assert table.to_pydict() == rows

    # and through datasets' own Hub loader (HfFileSystem: tree / paths-info / Range reads)
    loaded = load_dataset(repo_id, split="train", cache_dir=str(tmp_path / "ds_cache"))
    assert loaded.to_dict() == rows

    # second push of another split: datasets reads the card back and commits with parent_commit
    Dataset.from_dict({"prompt": ["z"], "score": [0.0]}).push_to_hub("tiny-ds", split="test")
    files = local_hub.files(repo_id, repo_type="dataset")
    assert any(p.startswith("data/test-") for p in files) and any(p.startswith("data/train-") for p in files)
    assert local_hub.unhandled == [] and local_hub.errors == []


def test_branches_prs_refs_commits_and_snapshot(local_hub, tmp_path):
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.utils import get_session

    api = HfApi()
    repo_id = api.create_repo("misc").repo_id
    first = api.upload_file(path_or_fileobj=b"v1", path_in_repo="f.txt", repo_id=repo_id, commit_message="v1")
    api.create_branch(repo_id, branch="dev")
    api.upload_file(path_or_fileobj=b"v2", path_in_repo="f.txt", repo_id=repo_id, revision="dev")
    pr = api.upload_file(path_or_fileobj=b"pr", path_in_repo="g.txt", repo_id=repo_id, create_pr=True)

    assert local_hub.files(repo_id)["f.txt"] == b"v1"
    assert local_hub.files(repo_id, revision="dev")["f.txt"] == b"v2"
    assert pr.pr_revision == "refs/pr/1" and "g.txt" in local_hub.files(repo_id, revision="refs/pr/1")
    assert "g.txt" not in local_hub.files(repo_id)
    assert {b.name for b in api.list_repo_refs(repo_id).branches} == {"main", "dev"}
    assert [c.title for c in api.list_repo_commits(repo_id)][:2] == ["v1", "initial commit"]
    assert api.list_repo_commits(repo_id)[0].commit_id == first.oid

    folder = snapshot_download(repo_id, revision="dev", cache_dir=tmp_path / "snap")
    assert (tmp_path / "snap").exists() and open(f"{folder}/f.txt", "rb").read() == b"v2"

    # paths-info / tree / Range reads / chunked request bodies
    infos = api.get_paths_info(repo_id, ["f.txt", "missing.txt"])
    assert [i.path for i in infos] == ["f.txt"] and infos[0].size == 2
    url = f"{local_hub.url}/{repo_id}/resolve/dev/f.txt"
    ranged = get_session().get(url, headers={"Range": "bytes=1-"})
    assert ranged.status_code == 206 and ranged.content == b"2"
    chunked = get_session().post(
        f"{local_hub.url}/api/validate-yaml",
        content=iter([b'{"content": "', b'x", "repoType": "model"}']),  # generator body => Transfer-Encoding: chunked
        headers={"Authorization": f"Bearer {local_hub.token}"},
    )
    assert chunked.status_code == 200
    assert local_hub.unhandled == [] and local_hub.errors == []
