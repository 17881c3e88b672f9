"""A Hugging Face Hub stand-in on 127.0.0.1: what trl-unified pushes and reads, through real HTTP, no network.

Loaded as a pytest plugin (`pytest_plugins = ["tests.hub_server"]` in tests/conftest.py). `pytest_configure` runs before any
test module is imported, so it starts the server and points the libraries at it through the environment, which
huggingface_hub, transformers and datasets read at import: `HF_ENDPOINT`, `HF_HOME` (a temp dir, so downloads from the
server never mix with the user's cache) and `HF_HUB_DISABLE_XET` (plain LFS uploads). The `local_hub` fixture empties
the server, sets a dummy `HF_TOKEN` and lifts the offline mode the rest of the suite runs in.

Routes (`<t>` = models|datasets, `<p>` = ""|"datasets/"), and who calls them:
    POST     /api/repos/create                         create_repo (push_to_hub; 409 when it exists, for exist_ok)
    POST     /api/validate-yaml                        Model/DatasetCard.push_to_hub check the card's metadata
    GET      /api/agent-harnesses                      huggingface_hub's user agent (once per HF_HOME and day)
    GET      /api/<t>/{repo}[/revision/{rev}]          repo info (sha, siblings): Dataset.push_to_hub, load_dataset
    GET      /api/<t>/{repo}/tree/{rev}[/{path}]       listing: Dataset.push_to_hub, load_dataset, list_repo_files
    POST     /api/<t>/{repo}/preupload/{rev}           upload mode of each file: regular (in the commit) or LFS ...
    POST     /<p>{repo}.git/info/lfs/objects/batch     ... where to upload LFS files ...
    PUT      /__lfs__/{sha256}                         ... the upload itself
    POST     /api/<t>/{repo}/commit/{rev}              the commit (ndjson: header, file, lfsFile)
    GET|HEAD /<p>{repo}/resolve/{rev}/{path}           downloads: from_pretrained, hf_hub_download, load_dataset
Revisions are "main" or a commit id. Any other request gets a 404 naming it, recorded in `unhandled`; an exception in
a handler is answered with a 400 (a 5xx would be retried with backoff) and recorded in `errors`.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

USERNAME = "test-user"  # namespace of repos created without one
TOKEN = "hf_local_hub_test_token"
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".parquet", ".arrow", ".png")  # stored with LFS, as the Hub's defaults


@dataclass(frozen=True)
class _File:
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class _Repo:
    url: str
    commits: dict[str, dict[str, _File]] = field(default_factory=dict)  # commit id -> path -> file
    head: str = ""  # commit id of "main"


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code  # code: X-Error-Code, picks the client exception


class LocalHubServer(http.server.ThreadingHTTPServer):
    """The server, serving from a daemon thread as soon as it is created. Repos live in memory."""

    def __init__(self, token: str = TOKEN):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.token = token
        self.lock = threading.Lock()
        self.reset()
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def reset(self) -> None:
        self.repos: dict[tuple[str, str], _Repo] = {}  # (repo type, repo id) -> repo
        self.lfs_objects: dict[str, bytes] = {}  # sha256 -> content, uploaded before the commit that adds it
        self.unhandled: list[str] = []
        self.errors: list[str] = []

    def close(self) -> None:
        self.shutdown()
        self.server_close()

    def files(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> dict[str, bytes]:
        """Content of every file of the repo at `revision`."""
        return {path: f.data for path, f in sorted(self.commit(repo_type, repo_id, revision)[1].items())}

    def repo(self, repo_type: str, repo_id: str) -> _Repo:
        if (repo_type, repo_id) not in self.repos:
            raise HubError(404, f"Repository Not Found: {repo_type} repo {repo_id}", "RepoNotFound")
        return self.repos[repo_type, repo_id]

    def commit(self, repo_type: str, repo_id: str, revision: str) -> tuple[str, dict[str, _File]]:
        """The commit id of `revision` ("main" or a commit id) and its files."""
        repo = self.repo(repo_type, repo_id)
        oid = repo.head if revision == "main" else revision
        if oid not in repo.commits:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return oid, repo.commits[oid]

    def add_commit(self, repo: _Repo, files: dict[str, _File]) -> str:
        oid = uuid.uuid4().hex + uuid.uuid4().hex[:8]  # 40 hex digits, like a git commit id
        repo.commits[oid], repo.head = files, oid
        return oid


def _tree_entry(path: str, file: _File | None) -> dict:
    if file is None:
        return {"type": "directory", "path": path, "oid": hashlib.sha1(path.encode()).hexdigest(), "size": 0}
    entry = {"type": "file", "path": path, "oid": file.sha256[:40], "size": len(file.data)}  # oid: a git blob id
    if file.lfs:
        entry["lfs"] = {"oid": file.sha256, "size": len(file.data), "pointerSize": 134}  # the git-LFS pointer's size
    return entry


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the Hub: every response carries a Content-Length
    timeout = 10  # seconds; idle keep-alive connections are closed after it
    server: LocalHubServer

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_GET

    def log_message(self, *args) -> None:  # quiet: the base class prints every request to stderr
        pass

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            self.close_connection = True
            return self._error(HubError(400, "LocalHubServer reads Content-Length bodies only, got a chunked one"))
        self.body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        for methods, pattern, handler in _ROUTES:
            match = re.fullmatch(pattern, url.path)
            if match and self.command in methods:
                args = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                if "repo" in args:  # the type is "models"/"datasets" in /api/ URLs, absent or "datasets/" in others
                    args["repo_type"] = "dataset" if args.pop("type", "").startswith("dataset") else "model"
                try:
                    with self.server.lock:
                        return handler(self, **args)
                except HubError as err:
                    return self._error(err)
                except Exception as exc:  # noqa: BLE001 - a bug here must fail the test, not hang the client
                    self.server.errors.append(f"{self.command} {url.path}: {exc!r}")
                    return self._error(HubError(400, f"LocalHubServer error: {exc!r}"))
        self.server.unhandled.append(f"{self.command} {url.path}")
        print(f"[hub_server] no route for {self.command} {url.path}", file=sys.stderr)
        self._error(HubError(404, f"LocalHubServer: no route for {self.command} {url.path}"))

    def _send(self, body: bytes, status: int = 200, headers: dict | None = None) -> None:
        self.send_response(status)
        for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, payload, status: int = 200) -> None:
        self._send(json.dumps(payload).encode(), status)

    def _error(self, err: HubError) -> None:
        headers = {"X-Error-Code": err.code} if err.code else {}
        self._send(json.dumps({"error": err.message}).encode(), err.status, headers)

    def _require_token(self) -> None:  # a push without the user's token must fail, as on the Hub
        if self.headers.get("Authorization") != f"Bearer {self.server.token}":
            raise HubError(401, "Invalid or missing token in the Authorization header")

    # ---------------------------------------------------------------- routes

    def create_repo(self) -> None:
        self._require_token()
        payload = json.loads(self.body)
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or USERNAME}/{payload['name']}"
        url = f"{self.server.url}/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}"
        if (repo_type, repo_id) in self.server.repos:
            return self._json({"error": f"You already created this {repo_type} repo", "url": url}, 409)
        self.server.repos[repo_type, repo_id] = repo = _Repo(url)
        self.server.add_commit(repo, {})
        self._json({"url": url})

    def validate_yaml(self) -> None:
        self._json({"errors": [], "warnings": []})

    def agent_harnesses(self) -> None:
        self._json({"standardEnvVars": [], "harnesses": {}})

    def repo_info(self, repo_type: str, repo: str, rev: str = "main") -> None:
        oid, files = self.server.commit(repo_type, repo, rev)
        self._json({"id": repo, "sha": oid, "siblings": [{"rfilename": p} for p in sorted(files)]})

    def tree(self, repo_type: str, repo: str, rev: str, path: str = "") -> None:
        _, files = self.server.commit(repo_type, repo, rev)
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        recursive = self.query.get("recursive", ["false"])[-1].lower() == "true"
        entries: dict[str, _File | None] = {}
        for name in sorted(p for p in files if p.startswith(prefix)):
            parts = name[len(prefix) :].split("/")
            folders = [prefix + "/".join(parts[:k]) for k in range(1, len(parts))]
            entries.update(dict.fromkeys(folders if recursive else folders[:1]))
            if recursive or len(parts) == 1:
                entries[name] = files[name]
        if prefix and not entries:
            raise HubError(404, f"Entry not found: {path} at {rev}", "EntryNotFound")
        self._json([_tree_entry(p, file) for p, file in entries.items()])

    def preupload(self, repo_type: str, repo: str, rev: str) -> None:
        self._require_token()
        self.server.commit(repo_type, repo, rev)
        modes = []
        for item in json.loads(self.body)["files"]:
            binary = b"\0" in base64.b64decode(item["sample"]) or item["path"].endswith(LFS_SUFFIXES)
            modes.append({"path": item["path"], "uploadMode": "lfs" if binary else "regular", "shouldIgnore": False})
        self._json({"files": modes})

    def lfs_batch(self, repo_type: str, repo: str) -> None:
        self._require_token()
        self.server.repo(repo_type, repo)
        objects = json.loads(self.body)["objects"]
        for obj in objects:  # objects the server has already get no upload action
            if obj["oid"] not in self.server.lfs_objects:
                obj["actions"] = {"upload": {"href": f"{self.server.url}/__lfs__/{obj['oid']}"}}
        self._json({"transfer": "basic", "objects": objects})

    def lfs_upload(self, sha256: str) -> None:
        if hashlib.sha256(self.body).hexdigest() != sha256:
            raise HubError(400, f"LFS upload content does not have sha256 {sha256}")
        self.server.lfs_objects[sha256] = self.body
        self._send(b"")

    def commit(self, repo_type: str, repo: str, rev: str) -> None:
        self._require_token()
        files = dict(self.server.commit(repo_type, repo, rev)[1])
        for line in self.body.decode().splitlines():
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "file":  # regular upload: the content is in the commit
                files[value["path"]] = _File(base64.b64decode(value["content"]), lfs=False)
            elif key == "lfsFile":
                if value["oid"] not in self.server.lfs_objects:
                    raise HubError(400, f"LFS object of {value['path']} was not uploaded")
                files[value["path"]] = _File(self.server.lfs_objects[value["oid"]], lfs=True)
            elif key != "header":
                raise HubError(400, f"LocalHubServer does not implement the commit operation {key!r}")
        oid = self.server.add_commit(self.server.repo(repo_type, repo), files)
        url = f"{self.server.repo(repo_type, repo).url}/commit/{oid}"
        self._json({"success": True, "commitOid": oid, "commitUrl": url, "pullRequestUrl": None})

    def resolve(self, repo_type: str, repo: str, rev: str, path: str) -> None:
        oid, files = self.server.commit(repo_type, repo, rev)
        if path not in files:
            raise HubError(404, f"Entry not found: {path} at {rev}", "EntryNotFound")
        self._send(files[path].data, headers={"ETag": f'"{files[path].sha256}"', "X-Repo-Commit": oid})


_API_REPO = r"/api/(?P<type>models|datasets)/(?P<repo>[^/]+/[^/]+)"  # repo ids always have a namespace here
_REPO = r"/(?P<type>datasets/)?(?P<repo>[^/]+/[^/]+)"
_ROUTES = [
    (("POST",), r"/api/repos/create", _Handler.create_repo),
    (("POST",), r"/api/validate-yaml", _Handler.validate_yaml),
    (("GET",), r"/api/agent-harnesses", _Handler.agent_harnesses),
    (("GET",), rf"{_API_REPO}(?:/revision/(?P<rev>[^/]+))?", _Handler.repo_info),
    (("GET",), rf"{_API_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", _Handler.tree),
    (("POST",), rf"{_API_REPO}/preupload/(?P<rev>[^/]+)", _Handler.preupload),
    (("POST",), rf"{_API_REPO}/commit/(?P<rev>[^/]+)", _Handler.commit),
    (("POST",), rf"{_REPO}\.git/info/lfs/objects/batch", _Handler.lfs_batch),
    (("PUT",), r"/__lfs__/(?P<sha256>[0-9a-f]{64})", _Handler.lfs_upload),
    (("GET", "HEAD"), rf"{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", _Handler.resolve),
]


# ---------------------------------------------------------------- pytest plugin

_server: LocalHubServer | None = None
_home: str | None = None


def pytest_configure(config) -> None:
    global _server, _home
    _server, _home = LocalHubServer(), tempfile.mkdtemp(prefix="hf_home_")
    os.environ.update(HF_ENDPOINT=_server.url, HF_HOME=_home, HF_HUB_DISABLE_XET="1")
    os.environ["NO_PROXY"] = ",".join(filter(None, ["127.0.0.1", os.environ.get("NO_PROXY")]))  # loopback: no proxy


def pytest_unconfigure(config) -> None:
    if _server is not None:
        _server.close()
        shutil.rmtree(_home, ignore_errors=True)


@pytest.fixture
def local_hub(monkeypatch):
    """The running, emptied `LocalHubServer`, with a dummy `HF_TOKEN` and the offline mode lifted for this test."""
    import datasets.config  # imported before the offline switches change, so that their import-time copies are kept
    from huggingface_hub import constants

    if constants.ENDPOINT != _server.url:
        pytest.fail("huggingface_hub was imported before the hub_server plugin set HF_ENDPOINT (load it from conftest)")
    _server.reset()
    monkeypatch.setenv("HF_TOKEN", _server.token)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # peft reads it from the environment on each call
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # huggingface_hub copied it from the env at import
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)  # so did datasets
    yield _server
    assert not _server.unhandled, f"requests the local Hub server has no route for: {_server.unhandled}"
    assert not _server.errors, f"the local Hub server failed on: {_server.errors}"
