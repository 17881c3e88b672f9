"""In-process, Hugging Face Hub-compatible HTTP server for tests (no network needed).

`LocalHubServer` serves the subset of the Hub HTTP API that `huggingface_hub` (and therefore `transformers`,
`peft` and `datasets`) uses to create repos, upload files (regular + basic git-LFS), and download them back.
Repos live in a temporary directory; everything runs on 127.0.0.1 with a free port, using only the stdlib
(`http.server` + `threading`).

Usage from a test (with `tests/` on `sys.path`, e.g. `pytest_plugins = ["hub_server"]` in `tests/conftest.py`):

    def test_push(local_hub):
        model.push_to_hub("tiny")                       # -> local_hub.url
        assert "model.safetensors" in local_hub.files("test-user/tiny")

The `local_hub` fixture points every client at the server: it sets `HF_ENDPOINT`/`HF_TOKEN`/`HF_HUB_DISABLE_XET`,
unsets the offline switches, *and* patches the values that `huggingface_hub` / `datasets` read from the
environment at import time (`huggingface_hub.constants.ENDPOINT`, `HUGGINGFACE_CO_URL_TEMPLATE`, the module-level
`HfApi` instance, `datasets.config.HF_ENDPOINT`, ...). The HF caches are redirected to a per-test temp dir.

Implemented routes (repo types: model, dataset, space, kernel; `<t>` = models/datasets/spaces/kernels,
`<prefix>` = ""/datasets/spaces/kernels/):
    GET    /api/whoami-v2
    POST   /api/repos/create                      DELETE /api/repos/delete
    POST   /api/validate-yaml
    GET    /api/<t>/{repo_id}                     GET    /api/<t>/{repo_id}/revision/{rev}
    POST   /api/<t>/{repo_id}/preupload/{rev}     POST   /api/<t>/{repo_id}/commit/{rev}   (ndjson)
    GET    /api/<t>/{repo_id}/tree/{rev}[/{path}] POST   /api/<t>/{repo_id}/paths-info/{rev}
    GET    /api/<t>/{repo_id}/refs                GET    /api/<t>/{repo_id}/commits/{rev}
    POST   /api/<t>/{repo_id}/branch/{branch}     DELETE /api/<t>/{repo_id}/branch/{branch}
    PUT    /api/<t>/{repo_id}/settings
    POST   /<prefix>{repo_id}.git/info/lfs/objects/batch   (basic transfer)   PUT /__lfs__/{sha256}
    GET|HEAD /<prefix>{repo_id}/resolve/{rev}/{filename}   (ETag, X-Repo-Commit, Content-Length, Range)

Anything else is answered with a 404 whose message names the route, is logged on the `hub_server` logger and
printed to stderr, and is recorded in `LocalHubServer.unhandled`.
Unexpected exceptions inside the server are answered with HTTP 400 (not 500: `huggingface_hub` retries 5xx with
backoff, which would make a broken test hang for ~20 s) and recorded in `LocalHubServer.errors`.
"""

from __future__ import annotations

import base64
import datetime as _dt
import fnmatch
import hashlib
import http.server
import json
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qs, unquote, urlsplit


logger = logging.getLogger("hub_server")

__all__ = ["LocalHubServer", "local_hub", "patch_hf_clients"]

REPO_TYPES = ("model", "dataset", "space", "kernel")
URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/", "kernel": "kernels/"}
_PLURAL_TO_TYPE = {f"{t}s": t for t in REPO_TYPES}
_PREFIX_TO_TYPE = {"datasets": "dataset", "spaces": "space", "kernels": "kernel"}

DEFAULT_USERNAME = "test-user"
DEFAULT_TOKEN = "hf_local_hub_test_token"

# Same patterns as the `.gitattributes` the Hub writes into new repos (files matching them are stored with LFS).
DEFAULT_LFS_PATTERNS = (
    "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.lfs.*", "*.mlmodel",
    "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb", "*.pickle", "*.pkl", "*.pt",
    "*.pth", "*.rar", "*.safetensors", "*.tar.*", "*.tar", "*.tflite", "*.tgz", "*.wasm", "*.xz", "*.zip", "*.zst",
    "*tfevents*", "*.lz4", "*.mds", "*.mp3", "*.ogg", "*.wav", "*.flac", "*.jpg", "*.jpeg", "*.png", "*.webp",
    "*.gif", "*.mp4", "*.webm",
)  # fmt: skip
_GITATTRIBUTES = "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in DEFAULT_LFS_PATTERNS)

_MAX_LINE = 65536  # longest chunk-size / trailer line accepted in a chunked body
_MAX_TRAILERS = 100


def _now_iso() -> str:
    now = _dt.datetime.now(_dt.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


class HubError(Exception):
    """Raised by request handlers; turned into an HTTP error response the way the real Hub shapes them."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code  # X-Error-Code: RepoNotFound / RevisionNotFound / EntryNotFound (drives client exceptions)
        self.headers = headers or {}


@dataclass(frozen=True)
class _Blob:
    sha256: str
    size: int
    lfs: bool
    git_oid: str  # git blob OID (of the LFS pointer file for LFS files), like the Hub's "oid"/"blobId"
    pointer_size: int | None = None


@dataclass
class _Commit:
    oid: str
    parent: str | None
    title: str
    message: str
    date: str
    seq: int
    files: dict[str, _Blob]
    last_changed: dict[str, str]  # path -> oid of the last commit that touched it


@dataclass
class _Repo:
    repo_type: str
    repo_id: str
    private: bool
    created_at: str
    refs: dict[str, str] = field(default_factory=dict)  # "main", other branches, "refs/pr/N" -> commit oid
    commits: dict[str, _Commit] = field(default_factory=dict)
    num_prs: int = 0


class LocalHubServer:
    """A minimal Hub-compatible HTTP server running in a background thread.

    Args:
        root: directory where objects are stored (a fresh temp dir, deleted on `stop()`, if not given).
        username: user returned by `/api/whoami-v2` and default namespace for `create_repo("name")`.
        token: accepted bearer token. Writes (and `whoami`) require it; reads of public repos don't.
            `None` accepts any non-empty token.
        lfs: upload mode policy answered by `preupload`: "auto" (like the Hub: LFS for files matching the
            default `.gitattributes` patterns, binary files and files >= `lfs_threshold`), "never" or "always".
            NB: `datasets.Dataset.push_to_hub` deletes its parquet temp files right after the LFS pre-upload,
            so it needs "auto" (or "always").
        request_timeout: socket timeout (s) of each connection; idle keep-alive connections are closed after it.
        max_body_bytes: larger request bodies are refused with 413.
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        *,
        username: str = DEFAULT_USERNAME,
        token: str | None = DEFAULT_TOKEN,
        lfs: str = "auto",
        lfs_threshold: int = 10 * 1024 * 1024,
        host: str = "127.0.0.1",
        port: int = 0,
        request_timeout: float = 10.0,
        max_body_bytes: int = 1 << 30,
    ) -> None:
        if lfs not in ("auto", "never", "always"):
            raise ValueError(f"lfs must be 'auto', 'never' or 'always', got {lfs!r}")
        self._own_root = root is None
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="local_hub_"))
        self.username = username
        self.token = token
        self.lfs = lfs
        self.lfs_threshold = lfs_threshold
        self.host = host
        self.port = port
        self.request_timeout = request_timeout
        self.max_body_bytes = max_body_bytes

        self._lock = threading.RLock()
        self._repos: dict[tuple[str, str], _Repo] = {}
        self._seq = 0
        self._httpd: _ThreadingServer | None = None
        self._thread: threading.Thread | None = None

        #: one dict per commit received through the HTTP API (repo_id, repo_type, revision, oid, title, added, ...)
        self.commit_log: list[dict[str, Any]] = []
        #: (method, path, status) for each request served
        self.request_log: list[tuple[str, str, int]] = []
        #: "METHOD /path" of requests that hit no route
        self.unhandled: list[str] = []
        #: formatted tracebacks of exceptions raised while handling a request
        self.errors: list[str] = []

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("LocalHubServer is not running")
        return f"http://{self.host}:{self._httpd.server_address[1]}"

    def start(self) -> "LocalHubServer":
        if self._httpd is not None:
            return self
        (self.root / "objects").mkdir(parents=True, exist_ok=True)
        self._httpd = _ThreadingServer((self.host, self.port), _Handler, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="local-hub-server", daemon=True
        )
        self._thread.start()
        logger.debug("LocalHubServer listening on %s (root=%s)", self.url, self.root)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()  # stops serve_forever (polls every 50 ms)
            httpd.close_all_connections()  # wakes handler threads blocked on idle keep-alive sockets
            httpd.server_close()
            if self._thread is not None:
                self._thread.join(timeout)
            httpd.join_handlers(timeout)
        self._thread = None
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "LocalHubServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ public helpers for tests

    def files(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> dict[str, bytes]:
        """Content of every file of `repo_id` at `revision` (includes the `.gitattributes` created with the repo)."""
        with self._lock:
            repo = self._get_repo(repo_type, repo_id)
            commit = self._resolve_revision(repo, revision)
            blobs = dict(commit.files)
        return {path: self._read_object(blob.sha256) for path, blob in sorted(blobs.items())}

    def file_info(self, repo_id: str, path: str, repo_type: str = "model", revision: str = "main") -> dict[str, Any]:
        """`{"size", "lfs", "sha256", "oid"}` of one file, e.g. to assert that it was uploaded through LFS."""
        with self._lock:
            blob = self._resolve_revision(self._get_repo(repo_type, repo_id), revision).files[path]
        return {"size": blob.size, "lfs": blob.lfs, "sha256": blob.sha256, "oid": blob.git_oid}

    def repo_exists(self, repo_id: str, repo_type: str = "model") -> bool:
        with self._lock:
            return (repo_type, repo_id) in self._repos

    def repos(self) -> list[tuple[str, str]]:
        """`(repo_type, repo_id)` of all repos."""
        with self._lock:
            return sorted(self._repos)

    def head(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> str:
        """Commit oid of `revision`."""
        with self._lock:
            return self._resolve_revision(self._get_repo(repo_type, repo_id), revision).oid

    def create_repo(self, repo_id: str, repo_type: str = "model", private: bool = False, exist_ok: bool = True) -> str:
        """Create a repo directly (server side), e.g. to seed a test. Returns the repo URL."""
        if "/" not in repo_id:
            repo_id = f"{self.username}/{repo_id}"
        with self._lock:
            if (repo_type, repo_id) in self._repos:
                if not exist_ok:
                    raise ValueError(f"{repo_type} repo {repo_id} already exists")
            else:
                self._create_repo(repo_type, repo_id, private)
        return self.repo_url(repo_id, repo_type)

    def add_files(
        self,
        repo_id: str,
        files: dict[str, bytes | str],
        repo_type: str = "model",
        revision: str = "main",
        message: str = "Seed files",
    ) -> str:
        """Commit `files` directly (server side, creating the repo if needed). Returns the commit oid."""
        self.create_repo(repo_id, repo_type)
        if "/" not in repo_id:
            repo_id = f"{self.username}/{repo_id}"
        ops = []
        for path, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            ops.append(("add", path, self._store_blob(data, lfs=self._decide_lfs(path, len(data), data[:512]))))
        with self._lock:
            repo = self._get_repo(repo_type, repo_id)
            commit = self._commit(repo, revision, ops, message, "")
        return commit.oid

    def repo_url(self, repo_id: str, repo_type: str = "model") -> str:
        return f"{self.url}/{URL_PREFIXES[repo_type]}{repo_id}"

    # ------------------------------------------------------------------ storage

    def _object_path(self, sha256: str) -> Path:
        return self.root / "objects" / sha256[:2] / sha256

    def _write_object(self, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        path = self._object_path(sha256)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{sha256}.{uuid.uuid4().hex}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return sha256

    def _read_object(self, sha256: str) -> bytes:
        return self._object_path(sha256).read_bytes()

    def _has_object(self, sha256: str) -> bool:
        return bool(re.fullmatch(r"[0-9a-f]{64}", sha256)) and self._object_path(sha256).exists()

    def _store_blob(self, data: bytes, lfs: bool) -> _Blob:
        sha256 = self._write_object(data)
        if lfs:
            pointer = _lfs_pointer(sha256, len(data))
            return _Blob(sha256, len(data), True, _git_blob_oid(pointer), len(pointer))
        return _Blob(sha256, len(data), False, _git_blob_oid(data))

    def _decide_lfs(self, path: str, size: int, sample: bytes) -> bool:
        if self.lfs == "never" or size == 0:
            return False
        if self.lfs == "always" or size >= self.lfs_threshold or b"\x00" in sample:
            return True
        name = path.rsplit("/", 1)[-1]
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in DEFAULT_LFS_PATTERNS)

    # ------------------------------------------------------------------ repo state (call with self._lock held)

    def _create_repo(self, repo_type: str, repo_id: str, private: bool) -> _Repo:
        repo = _Repo(repo_type=repo_type, repo_id=repo_id, private=private, created_at=_now_iso())
        self._repos[(repo_type, repo_id)] = repo
        blob = self._store_blob(_GITATTRIBUTES.encode(), lfs=False)
        self._commit(repo, "main", [("add", ".gitattributes", blob)], "initial commit", "", create_branch=True)
        return repo

    def _get_repo(self, repo_type: str, repo_id: str) -> _Repo:
        repo = self._repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, f"Repository Not Found: {repo_type} repo '{repo_id}' does not exist", "RepoNotFound")
        return repo

    def _resolve_revision(self, repo: _Repo, revision: str | None) -> _Commit:
        revision = revision or "main"
        if revision.startswith("refs/heads/"):
            revision = revision[len("refs/heads/") :]
        oid = repo.refs.get(revision)
        if oid is None and re.fullmatch(r"[0-9a-f]{7,40}", revision):
            matches = [c for c in repo.commits if c.startswith(revision)]
            oid = matches[0] if len(matches) == 1 else None
        if oid is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return repo.commits[oid]

    def _commit(
        self,
        repo: _Repo,
        revision: str,
        ops: list[tuple[str, str, _Blob | None]],
        title: str,
        description: str,
        parent_commit: str | None = None,
        create_branch: bool = False,
    ) -> _Commit:
        if create_branch and revision not in repo.refs:
            parent = None
        else:
            if revision not in repo.refs:
                raise HubError(404, f"Invalid rev id: {revision} (branch does not exist)", "RevisionNotFound")
            parent = repo.commits[repo.refs[revision]]
        if parent_commit is not None and (parent is None or parent.oid != parent_commit):
            raise HubError(412, f"Parent commit {parent_commit} is not the head of '{revision}'")
        files = dict(parent.files) if parent else {}
        last_changed = dict(parent.last_changed) if parent else {}
        touched: list[str] = []
        for kind, path, blob in ops:
            if kind == "add":
                assert blob is not None
                files[path] = blob
                touched.append(path)
            elif kind == "delete_file":
                if path not in files:
                    raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                del files[path]
                last_changed.pop(path, None)
            elif kind == "delete_folder":
                prefix = path.rstrip("/") + "/"
                doomed = [p for p in files if p.startswith(prefix)]
                if not doomed:
                    raise HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
                for p in doomed:
                    del files[p]
                    last_changed.pop(p, None)
            else:  # pragma: no cover - internal
                raise ValueError(kind)
        self._seq += 1
        oid = hashlib.sha1(f"{uuid.uuid4().hex}:{parent.oid if parent else ''}:{title}".encode()).hexdigest()
        for path in touched:
            last_changed[path] = oid
        commit = _Commit(
            oid=oid,
            parent=parent.oid if parent else None,
            title=title,
            message=description,
            date=_now_iso(),
            seq=self._seq,
            files=files,
            last_changed=last_changed,
        )
        repo.commits[oid] = commit
        repo.refs[revision] = oid
        return commit

    # ------------------------------------------------------------------ JSON shapes

    def _file_entry(self, repo: _Repo, commit: _Commit, path: str, expand: bool) -> dict[str, Any]:
        blob = commit.files[path]
        entry: dict[str, Any] = {"type": "file", "oid": blob.git_oid, "size": blob.size, "path": path}
        if blob.lfs:
            entry["lfs"] = {"oid": blob.sha256, "size": blob.size, "pointerSize": blob.pointer_size}
        if expand:
            entry["lastCommit"] = self._last_commit_json(repo, commit.last_changed.get(path, commit.oid))
        return entry

    def _dir_entry(self, repo: _Repo, commit: _Commit, path: str, expand: bool) -> dict[str, Any]:
        prefix = path + "/"
        children = sorted((p, b.git_oid) for p, b in commit.files.items() if p.startswith(prefix))
        entry: dict[str, Any] = {
            "type": "directory",
            "oid": hashlib.sha1(json.dumps(children).encode()).hexdigest(),
            "size": 0,
            "path": path,
        }
        if expand:
            oids = [commit.last_changed.get(p, commit.oid) for p, _ in children]
            latest = max(oids, key=lambda o: repo.commits[o].seq) if oids else commit.oid
            entry["lastCommit"] = self._last_commit_json(repo, latest)
        return entry

    @staticmethod
    def _last_commit_json(repo: _Repo, oid: str) -> dict[str, Any]:
        c = repo.commits[oid]
        return {"id": c.oid, "title": c.title, "date": c.date}

    def _card_data(self, commit: _Commit) -> dict[str, Any] | None:
        blob = commit.files.get("README.md")
        if blob is None:
            return None
        text = self._read_object(blob.sha256).decode("utf-8", errors="replace")
        match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, re.DOTALL)
        if not match:
            return None
        try:
            import yaml  # optional: only used to expose README metadata as `cardData`
        except ImportError:
            return None
        try:
            data = yaml.safe_load(match.group(1))
        except Exception:
            return None
        return data if isinstance(data, dict) else None

    def _info_json(self, repo: _Repo, commit: _Commit, blobs: bool) -> dict[str, Any]:
        siblings = []
        for path, blob in sorted(commit.files.items()):
            sibling: dict[str, Any] = {"rfilename": path}
            if blobs:
                sibling.update(size=blob.size, blobId=blob.git_oid)
                if blob.lfs:
                    sibling["lfs"] = {"sha256": blob.sha256, "size": blob.size, "pointerSize": blob.pointer_size}
            siblings.append(sibling)
        namespace = repo.repo_id.split("/")[0] if "/" in repo.repo_id else self.username
        info: dict[str, Any] = {
            "_id": hashlib.sha1(f"{repo.repo_type}/{repo.repo_id}".encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": namespace,
            "sha": commit.oid,
            "lastModified": commit.date,
            "createdAt": repo.created_at,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
            "usedStorage": sum(b.size for b in commit.files.values()),
        }
        card = self._card_data(commit)
        if card is not None:
            info["cardData"] = card
        if repo.repo_type == "model":
            info["modelId"] = repo.repo_id
        if repo.repo_type == "space":
            info.update(sdk="static", runtime=None)
        return info


class _ThreadingServer(http.server.ThreadingHTTPServer):
    """ThreadingHTTPServer that remembers its connections so that `stop()` can close idle keep-alive sockets."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], handler: type, hub: LocalHubServer) -> None:
        self.hub = hub
        self._conn_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._handler_threads: set[threading.Thread] = set()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._run_handler, args=(request, client_address), name="local-hub-handler", daemon=True
        )
        with self._conn_lock:
            self._connections.add(request)
            self._handler_threads.add(thread)
        thread.start()

    def _run_handler(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)  # handles + closes the connection
        finally:
            with self._conn_lock:
                self._connections.discard(request)
                self._handler_threads.discard(threading.current_thread())

    def close_all_connections(self) -> None:
        with self._conn_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def join_handlers(self, timeout: float) -> None:
        with self._conn_lock:
            threads = list(self._handler_threads)
        for thread in threads:
            thread.join(timeout)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real Hub (every response carries a Content-Length)
    server_version = "LocalHubServer/1.0"
    server: _ThreadingServer

    # -------------------------------------------------------------- plumbing

    def setup(self) -> None:
        self.timeout = self.server.hub.request_timeout  # bounds every blocking read, incl. idle keep-alive waits
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature from the base class
        logger.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    @property
    def hub(self) -> LocalHubServer:
        return self.server.hub

    def _read_body(self) -> bytes:
        limit = self.hub.max_body_bytes
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:  # ends at the terminating 0-size chunk; every read is bounded (size, timeout, limit)
                line = self.rfile.readline(_MAX_LINE)
                if not line:
                    raise HubError(400, "Truncated chunked request body")
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise HubError(400, f"Malformed chunk size line: {line[:100]!r}") from None
                if size == 0:
                    for _ in range(_MAX_TRAILERS):
                        if self.rfile.readline(_MAX_LINE) in (b"\r\n", b"\n", b""):
                            break
                    return b"".join(chunks)
                total += size
                if total > limit:
                    self.close_connection = True
                    raise HubError(413, f"Request body larger than {limit} bytes")
                data = self.rfile.read(size)
                if len(data) != size:
                    raise HubError(400, "Truncated chunked request body")
                chunks.append(data)
                self.rfile.readline(_MAX_LINE)  # CRLF after each chunk
        length = int(self.headers.get("Content-Length") or 0)
        if length > limit:
            self.close_connection = True
            raise HubError(413, f"Request body larger than {limit} bytes")
        data = self.rfile.read(length) if length > 0 else b""
        if len(data) != length:
            raise HubError(400, "Truncated request body")
        return data

    def _send(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self._status = status
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _send_json(self, payload: Any, status: int = 200, headers: dict[str, str] | None = None, **kw: Any) -> None:
        self._send(status, json.dumps(payload).encode(), headers=headers, **kw)

    def _send_error_json(self, err: HubError) -> None:
        headers = dict(err.headers)
        # Header values must be latin-1 single lines; the full message also goes into the JSON body.
        headers["X-Error-Message"] = re.sub(r"[^\x20-\x7e]", " ", err.message)[:1000]
        if err.code:
            headers["X-Error-Code"] = err.code
        self._send_json({"error": err.message}, status=err.status, headers=headers)

    def _dispatch(self) -> None:
        self._status = 0
        split = urlsplit(self.path)
        self.query = parse_qs(split.query, keep_blank_values=True)
        segments = [unquote(s) for s in split.path.split("/")[1:]]
        while segments and segments[-1] == "":
            segments.pop()
        try:
            self.body = self._read_body()
            if not self._route(segments):
                msg = f"LocalHubServer: no route for {self.command} {split.path}"
                with self.hub._lock:
                    self.hub.unhandled.append(f"{self.command} {split.path}")
                logger.warning(msg)
                print(f"[hub_server] {msg}", file=sys.stderr, flush=True)
                self._send_error_json(HubError(404, msg))
        except HubError as err:
            self._send_error_json(err)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # report clearly, and with a non-retried status (see module docstring)
            tb = traceback.format_exc()
            with self.hub._lock:
                self.hub.errors.append(tb)
            logger.error("LocalHubServer error on %s %s\n%s", self.command, self.path, tb)
            print(f"[hub_server] error on {self.command} {self.path}\n{tb}", file=sys.stderr, flush=True)
            self.close_connection = True
            self._send_error_json(HubError(400, f"LocalHubServer internal error: {exc!r}"))
        finally:
            with self.hub._lock:
                self.hub.request_log.append((self.command, self.path, self._status))

    # -------------------------------------------------------------- auth

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip() or None
        return None

    def _is_authenticated(self) -> bool:
        token = self._token()
        return token is not None and (self.hub.token is None or token == self.hub.token)

    def _require_auth(self) -> None:
        if self._token() is None:
            raise HubError(401, "Unauthorized: this operation requires a token (Authorization: Bearer ...)")
        if not self._is_authenticated():
            raise HubError(401, "Invalid credentials in Authorization header")

    def _readable_repo(self, repo_type: str, repo_id: str) -> _Repo:
        repo = self.hub._get_repo(repo_type, repo_id)
        if repo.private and not self._is_authenticated():
            raise HubError(404, f"Repository Not Found: {repo_type} repo '{repo_id}'", "RepoNotFound")
        return repo

    # -------------------------------------------------------------- routing

    def _route(self, seg: list[str]) -> bool:
        method = self.command
        if not seg:
            return False
        if seg[0] == "api":
            return self._route_api(method, seg[1:])
        if seg[0] == "__lfs__" and len(seg) == 2 and method == "PUT":
            self._lfs_put(seg[1])
            return True
        repo_type = "model"
        if seg[0] in _PREFIX_TO_TYPE and len(seg) > 1:
            repo_type, seg = _PREFIX_TO_TYPE[seg[0]], seg[1:]
        # git-LFS batch API: /<prefix>{repo_id}.git/info/lfs/objects/batch
        for n in (2, 1):
            if len(seg) > n and seg[n - 1].endswith(".git") and seg[n:] == ["info", "lfs", "objects", "batch"]:
                if method != "POST":
                    return False
                repo_id = "/".join(seg[: n - 1] + [seg[n - 1][: -len(".git")]])
                self._lfs_batch(repo_type, repo_id)
                return True
        # file download: /<prefix>{repo_id}/resolve/{revision}/{path}
        for n in (2, 1):
            if len(seg) > n + 2 and seg[n] == "resolve" and method in ("GET", "HEAD"):
                repo_id = "/".join(seg[:n])
                if n == 1 or self.hub.repo_exists(repo_id, repo_type) or not self.hub.repo_exists(seg[0], repo_type):
                    self._resolve(repo_type, repo_id, seg[n + 1], "/".join(seg[n + 2 :]))
                    return True
        return False

    def _route_api(self, method: str, seg: list[str]) -> bool:
        if seg == ["whoami-v2"] and method == "GET":
            self._whoami()
        elif seg == ["repos", "create"] and method == "POST":
            self._create_repo()
        elif seg == ["repos", "delete"] and method == "DELETE":
            self._delete_repo()
        elif seg == ["validate-yaml"] and method == "POST":
            self._send_json({"errors": [], "warnings": []})
        elif len(seg) >= 2 and seg[0] in _PLURAL_TO_TYPE:
            return self._route_repo_api(method, _PLURAL_TO_TYPE[seg[0]], seg[1:])
        else:
            return False
        return True

    def _split_repo_id(self, repo_type: str, seg: list[str]) -> tuple[str, list[str]]:
        """`ns/name/rest...` -> ("ns/name", rest); falls back to a namespace-less id if such a repo exists."""
        if len(seg) >= 2 and self.hub.repo_exists(f"{seg[0]}/{seg[1]}", repo_type):
            return f"{seg[0]}/{seg[1]}", seg[2:]
        if self.hub.repo_exists(seg[0], repo_type):
            return seg[0], seg[1:]
        if len(seg) >= 2:
            return f"{seg[0]}/{seg[1]}", seg[2:]
        return seg[0], []

    def _route_repo_api(self, method: str, repo_type: str, seg: list[str]) -> bool:
        repo_id, rest = self._split_repo_id(repo_type, seg)
        action = rest[0] if rest else None
        args = rest[1:]
        if action is None and method == "GET":
            self._repo_info(repo_type, repo_id, None)
        elif action == "revision" and args and method == "GET":
            self._repo_info(repo_type, repo_id, "/".join(args))
        elif action == "preupload" and len(args) == 1 and method == "POST":
            self._preupload(repo_type, repo_id, args[0])
        elif action == "commit" and len(args) == 1 and method == "POST":
            self._commit(repo_type, repo_id, args[0])
        elif action == "tree" and args and method == "GET":
            self._tree(repo_type, repo_id, args[0], "/".join(args[1:]))
        elif action == "paths-info" and len(args) == 1 and method == "POST":
            self._paths_info(repo_type, repo_id, args[0])
        elif action == "refs" and not args and method == "GET":
            self._refs(repo_type, repo_id)
        elif action == "commits" and len(args) == 1 and method == "GET":
            self._list_commits(repo_type, repo_id, args[0])
        elif action == "branch" and args and method in ("POST", "DELETE"):
            self._branch(repo_type, repo_id, "/".join(args))
        elif action == "settings" and not args and method == "PUT":
            self._settings(repo_type, repo_id)
        else:
            return False
        return True

    # -------------------------------------------------------------- endpoints

    def _json_body(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise HubError(400, f"Invalid JSON body: {exc}") from None

    def _whoami(self) -> None:
        self._require_auth()
        hub = self.hub
        self._send_json(
            {
                "type": "user",
                "id": hashlib.sha1(hub.username.encode()).hexdigest()[:24],
                "name": hub.username,
                "fullname": "Local Hub Test User",
                "email": f"{hub.username}@localhost",
                "emailVerified": True,
                "canPay": False,
                "isPro": False,
                "periodEnd": None,
                "avatarUrl": "",
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"displayName": "local-hub", "role": "write"}},
            }
        )

    def _create_repo(self) -> None:
        self._require_auth()
        payload = self._json_body()
        name = payload.get("name")
        if not name or "/" in name:
            raise HubError(400, f"Invalid repo name: {name!r}")
        namespace = payload.get("organization") or self.hub.username
        repo_type = payload.get("type") or "model"
        if repo_type not in REPO_TYPES:
            raise HubError(400, f"Invalid repo type: {repo_type!r}")
        repo_id = f"{namespace}/{name}"
        private = bool(payload.get("private")) or payload.get("visibility") == "private"
        url = self.hub.repo_url(repo_id, repo_type)
        with self.hub._lock:
            if (repo_type, repo_id) in self.hub._repos:
                self._send_json({"error": f"You already created this {repo_type} repo", "url": url}, status=409)
                return
            self.hub._create_repo(repo_type, repo_id, private)
        self._send_json({"url": url, "name": repo_id, "id": repo_id})

    def _delete_repo(self) -> None:
        self._require_auth()
        payload = self._json_body()
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or self.hub.username}/{payload.get('name')}"
        with self.hub._lock:
            self.hub._get_repo(repo_type, repo_id)
            del self.hub._repos[(repo_type, repo_id)]
        self._send_json({})

    def _settings(self, repo_type: str, repo_id: str) -> None:
        self._require_auth()
        payload = self._json_body()
        with self.hub._lock:
            repo = self.hub._get_repo(repo_type, repo_id)
            if "private" in payload:
                repo.private = bool(payload["private"])
            if "visibility" in payload:
                repo.private = payload["visibility"] == "private"
        self._send_json({})

    def _repo_info(self, repo_type: str, repo_id: str, revision: str | None) -> None:
        with self.hub._lock:
            repo = self._readable_repo(repo_type, repo_id)
            commit = self.hub._resolve_revision(repo, revision)
            blobs = "blobs" in self.query and self.query["blobs"][-1].lower() not in ("0", "false")
            info = self.hub._info_json(repo, commit, blobs=blobs)
        self._send_json(info)

    def _preupload(self, repo_type: str, repo_id: str, revision: str) -> None:
        self._require_auth()
        payload = self._json_body()
        with self.hub._lock:
            repo = self.hub._get_repo(repo_type, repo_id)
            try:
                current = self.hub._resolve_revision(repo, revision).files
            except HubError:
                current = {}  # new branch / PR: nothing to compare with
        out = []
        for item in payload.get("files", []):
            path = item["path"]
            sample = base64.b64decode(item.get("sample") or "")
            lfs = self.hub._decide_lfs(path, int(item.get("size", 0)), sample)
            existing = current.get(path)
            oid = None
            if existing is not None:
                # the client compares it with sha256 (LFS) or git-sha1 (regular) of the local file
                oid = existing.sha256 if lfs else _git_blob_oid(self.hub._read_object(existing.sha256))
            out.append({"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid})
        self._send_json({"files": out, "commitOid": None})

    def _commit(self, repo_type: str, repo_id: str, revision: str) -> None:
        self._require_auth()
        header: dict[str, Any] = {}
        ops: list[tuple[str, str, _Blob | None]] = []
        summary: dict[str, list[str]] = {"added": [], "lfs": [], "deleted": []}
        lines = self.body.decode("utf-8").splitlines()
        for raw in lines:
            if not raw.strip():
                continue
            try:
                item = json.loads(raw)
            except ValueError as exc:
                raise HubError(400, f"Invalid ndjson line in commit payload: {exc}") from None
            key, value = item.get("key"), item.get("value") or {}
            if key == "header":
                header = value
            elif key == "file":
                content = value.get("content", "")
                encoding = value.get("encoding", "utf-8")
                data = base64.b64decode(content) if encoding == "base64" else content.encode("utf-8")
                ops.append(("add", value["path"], self.hub._store_blob(data, lfs=False)))
                summary["added"].append(value["path"])
            elif key == "lfsFile":
                sha256 = value.get("oid", "")
                if value.get("algo", "sha256") != "sha256" or not self.hub._has_object(sha256):
                    raise HubError(400, f"LFS object {sha256} for '{value.get('path')}' was not uploaded")
                data_size = self.hub._object_path(sha256).stat().st_size
                pointer = _lfs_pointer(sha256, data_size)
                blob = _Blob(sha256, data_size, True, _git_blob_oid(pointer), len(pointer))
                ops.append(("add", value["path"], blob))
                summary["added"].append(value["path"])
                summary["lfs"].append(value["path"])
            elif key == "deletedFile":
                ops.append(("delete_file", value["path"], None))
                summary["deleted"].append(value["path"])
            elif key == "deletedFolder":
                ops.append(("delete_folder", value["path"], None))
                summary["deleted"].append(value["path"].rstrip("/") + "/")
            else:
                raise HubError(400, f"LocalHubServer: unsupported commit operation key {key!r}")
        create_pr = self.query.get("create_pr", ["0"])[-1] in ("1", "true", "True")
        with self.hub._lock:
            repo = self.hub._get_repo(repo_type, repo_id)
            target = revision
            pr_num = None
            if create_pr:
                base = self.hub._resolve_revision(repo, revision)
                repo.num_prs += 1
                pr_num = repo.num_prs
                target = f"refs/pr/{pr_num}"
                repo.refs[target] = base.oid
            commit = self.hub._commit(
                repo,
                target,
                ops,
                header.get("summary") or "Upload files",
                header.get("description") or "",
                parent_commit=header.get("parentCommit"),
            )
            self.hub.commit_log.append(
                {
                    "repo_id": repo_id,
                    "repo_type": repo_type,
                    "revision": target,
                    "oid": commit.oid,
                    "parent": commit.parent,
                    "title": commit.title,
                    "description": commit.message,
                    **summary,
                }
            )
        base_url = self.hub.repo_url(repo_id, repo_type)
        self._send_json(
            {
                "success": True,
                "commitOid": commit.oid,
                "commitUrl": f"{base_url}/commit/{commit.oid}",
                "pullRequestUrl": f"{base_url}/discussions/{pr_num}" if pr_num is not None else None,
            }
        )

    def _tree(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        recursive = self.query.get("recursive", ["false"])[-1].lower() in ("1", "true")
        expand = self.query.get("expand", ["false"])[-1].lower() in ("1", "true")
        path = path.strip("/")
        with self.hub._lock:
            repo = self._readable_repo(repo_type, repo_id)
            commit = self.hub._resolve_revision(repo, revision)
            prefix = f"{path}/" if path else ""
            under = [p for p in commit.files if p.startswith(prefix)]
            if path and not under:
                raise HubError(404, f"Entry not found: '{path}' is not a folder at {revision}", "EntryNotFound")
            dirs: set[str] = set()
            files: list[str] = []
            for p in under:
                parts = p[len(prefix) :].split("/")
                if recursive:
                    files.append(p)
                    dirs.update(prefix + "/".join(parts[:k]) for k in range(1, len(parts)))
                elif len(parts) == 1:
                    files.append(p)
                else:
                    dirs.add(prefix + parts[0])
            entries = [self.hub._dir_entry(repo, commit, d, expand) for d in sorted(dirs)]
            entries += [self.hub._file_entry(repo, commit, f, expand) for f in sorted(files)]
        self._send_json(entries)

    def _paths_info(self, repo_type: str, repo_id: str, revision: str) -> None:
        ctype = self.headers.get("Content-Type", "")
        if "json" in ctype:
            payload = self._json_body()
            paths = payload.get("paths", [])
            paths = [paths] if isinstance(paths, str) else paths
            expand = bool(payload.get("expand"))
        else:  # huggingface_hub sends form data: paths=a&paths=b&expand=False
            form = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
            paths = form.get("paths", [])
            expand = form.get("expand", ["False"])[-1].lower() in ("1", "true")
        with self.hub._lock:
            repo = self._readable_repo(repo_type, repo_id)
            commit = self.hub._resolve_revision(repo, revision)
            out = []
            for p in paths:
                p = p.strip("/")
                if p in commit.files:
                    out.append(self.hub._file_entry(repo, commit, p, expand))
                elif p and any(f.startswith(p + "/") for f in commit.files):
                    out.append(self.hub._dir_entry(repo, commit, p, expand))
        self._send_json(out)

    def _refs(self, repo_type: str, repo_id: str) -> None:
        with self.hub._lock:
            repo = self._readable_repo(repo_type, repo_id)
            branches = [
                {"name": name, "ref": f"refs/heads/{name}", "targetCommit": oid}
                for name, oid in sorted(repo.refs.items())
                if not name.startswith("refs/")
            ]
            prs = [
                {"name": name, "ref": name, "targetCommit": oid}
                for name, oid in sorted(repo.refs.items())
                if name.startswith("refs/pr/")
            ]
        payload: dict[str, Any] = {"branches": branches, "converts": [], "tags": []}
        if self.query.get("include_prs"):
            payload["pullRequests"] = prs
        self._send_json(payload)

    def _list_commits(self, repo_type: str, repo_id: str, revision: str) -> None:
        with self.hub._lock:
            repo = self._readable_repo(repo_type, repo_id)
            commit: _Commit | None = self.hub._resolve_revision(repo, revision)
            out = []
            for _ in range(len(repo.commits)):  # bounded walk to the root commit
                if commit is None:
                    break
                out.append(
                    {
                        "id": commit.oid,
                        "title": commit.title,
                        "message": commit.message,
                        "authors": [{"user": self.hub.username, "avatar": ""}],
                        "date": commit.date,
                    }
                )
                commit = repo.commits.get(commit.parent) if commit.parent else None
        self._send_json(out)

    def _branch(self, repo_type: str, repo_id: str, branch: str) -> None:
        self._require_auth()
        with self.hub._lock:
            repo = self.hub._get_repo(repo_type, repo_id)
            if branch.startswith("refs/"):
                raise HubError(400, f"Invalid reference for a branch: {branch}")
            if self.command == "DELETE":
                if branch not in repo.refs:
                    raise HubError(404, f"Branch {branch} not found", "RevisionNotFound")
                if branch == "main":
                    raise HubError(403, "Cannot delete the main branch")
                del repo.refs[branch]
            else:
                if branch in repo.refs:
                    raise HubError(409, f"Reference {branch} already exists")
                start = self._json_body().get("startingPoint")
                repo.refs[branch] = self.hub._resolve_revision(repo, start).oid
        self._send_json({})

    def _lfs_batch(self, repo_type: str, repo_id: str) -> None:
        self._require_auth()
        payload = self._json_body()
        with self.hub._lock:
            self.hub._get_repo(repo_type, repo_id)
        if payload.get("operation") != "upload":
            operation = payload.get("operation")
            raise HubError(400, f"LocalHubServer only implements LFS 'upload' batches, got {operation!r}")
        objects = []
        for obj in payload.get("objects", []):
            oid, size = str(obj.get("oid", "")), int(obj.get("size", 0))
            entry: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if not re.fullmatch(r"[0-9a-f]{64}", oid):
                entry["error"] = {"code": 422, "message": f"Invalid sha256 oid {oid!r}"}
            elif not self.hub._has_object(oid):  # already-present objects get no actions => client skips them
                entry["actions"] = {"upload": {"href": f"{self.hub.url}/__lfs__/{oid}", "header": {}}}
            objects.append(entry)
        self._send_json(
            {"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
            content_type="application/vnd.git-lfs+json",
        )

    def _lfs_put(self, oid: str) -> None:
        if not re.fullmatch(r"[0-9a-f]{64}", oid):
            raise HubError(400, f"Invalid LFS oid {oid!r}")
        actual = hashlib.sha256(self.body).hexdigest()
        if actual != oid:
            raise HubError(400, f"LFS upload content has sha256 {actual}, expected {oid}")
        self.hub._write_object(self.body)
        self._send(200, b"", headers={"ETag": f'"{oid}"'})

    def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        with self.hub._lock:
            repo = self._readable_repo(repo_type, repo_id)
            commit = self.hub._resolve_revision(repo, revision)
            blob = commit.files.get(path)
        common = {"X-Repo-Commit": commit.oid}
        if blob is None:
            raise HubError(404, f"Entry not found: {path} at {revision}", "EntryNotFound", headers=common)
        etag = blob.sha256 if blob.lfs else blob.git_oid
        headers = {**common, "ETag": f'"{etag}"', "Accept-Ranges": "bytes"}
        if blob.lfs:
            headers.update({"X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": str(blob.size)})
        data = self.hub._read_object(blob.sha256)
        status = 200
        range_header = self.headers.get("Range")
        if range_header:
            m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", range_header)
            if not m or (m.group(1) == "" and m.group(2) == ""):
                unsatisfiable = {"Content-Range": f"bytes */{len(data)}"}
                raise HubError(416, f"Unsupported Range header {range_header!r}", headers=unsatisfiable)
            if m.group(1) == "":
                start, end = max(len(data) - int(m.group(2)), 0), len(data) - 1
            else:
                start = int(m.group(1))
                end = min(int(m.group(2)), len(data) - 1) if m.group(2) else len(data) - 1
            if start >= len(data) or start > end:
                raise HubError(416, "Range Not Satisfiable", headers={"Content-Range": f"bytes */{len(data)}"})
            data = data[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{blob.size}"
            status = 206
        self._send(status, data, content_type="application/octet-stream", headers=headers)


# ---------------------------------------------------------------------- client patching / pytest fixture


# Packages whose module-level HfApi instances get repointed at the server (see `patch_hf_clients`).
_PATCHED_PACKAGES = frozenset(
    {"huggingface_hub", "transformers", "peft", "datasets", "trl", "trl_unified", "accelerate", "diffusers"}
)


def patch_hf_clients(monkeypatch: Any, server: LocalHubServer, cache_dir: str | os.PathLike | None = None) -> None:
    """Point huggingface_hub / transformers / peft / datasets at `server`, using `monkeypatch` (undone at teardown).

    Environment variables alone are not enough once the libraries are imported: `huggingface_hub.constants`
    and `datasets.config` copy `HF_ENDPOINT` (and the offline / xet / cache switches) at import time, and
    `huggingface_hub.hf_api.api` (behind `huggingface_hub.create_repo`, `upload_file`, ...) stores the endpoint
    when it is created. All of those are patched here.
    """
    url = server.url
    env = {
        "HF_ENDPOINT": url,
        "HF_TOKEN": server.token or "hf_local_hub_dummy_token",
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_IMPLICIT_TOKEN": "0",
        "HF_UPDATE_DOWNLOAD_COUNTS": "0",
    }
    if cache_dir is not None:
        cache_dir = Path(cache_dir)
        env.update(HF_HUB_CACHE=str(cache_dir / "hub"), HF_DATASETS_CACHE=str(cache_dir / "datasets"))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in (
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "HF_DATASETS_OFFLINE",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_OIDC_RESOURCE",
        "HUGGINGFACE_CO_STAGING",
    ):
        monkeypatch.delenv(key, raising=False)
    for key in ("NO_PROXY", "no_proxy"):  # never send loopback traffic through a proxy
        current = os.environ.get(key)
        monkeypatch.setenv(key, f"{server.host},localhost" + (f",{current}" if current else ""))

    import huggingface_hub
    from huggingface_hub import constants, hf_api
    from huggingface_hub.utils import _http

    huggingface_hub.close_session()  # the shared httpx client may have been created with another env / proxies
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_IMPLICIT_TOKEN", False)
    if hasattr(constants, "HF_URL_HOSTS"):
        monkeypatch.setattr(constants, "HF_URL_HOSTS", frozenset(constants.HF_URL_HOSTS | {server.host}))
    if cache_dir is not None:
        monkeypatch.setattr(constants, "HF_HUB_CACHE", env["HF_HUB_CACHE"])
    if "HUGGINGFACE_CO_URL_TEMPLATE" in vars(huggingface_hub):  # lazily exported attribute, if already materialized
        monkeypatch.setattr(huggingface_hub, "HUGGINGFACE_CO_URL_TEMPLATE", constants.HUGGINGFACE_CO_URL_TEMPLATE)
    # Long-lived HfApi instances keep the endpoint they were created with: the module-level one behind
    # `huggingface_hub.create_repo` & co, and shared ones cached by libraries (e.g. `transformers.utils.hub._hf_api`,
    # created on first use and reused by every later `push_to_hub`). Repoint all of those found in loaded modules.
    for module_name, module in list(sys.modules.items()):
        if module is None or module_name.split(".")[0] not in _PATCHED_PACKAGES:
            continue
        for attr_name, value in list(vars(module).items()):
            if isinstance(value, hf_api.HfApi):
                monkeypatch.setattr(value, "endpoint", url)
                monkeypatch.setattr(value, "_whoami_cache", {})
    if hasattr(_http, "_HUB_ORIGINS") and hasattr(_http, "_url_origin"):
        monkeypatch.setattr(_http, "_HUB_ORIGINS", frozenset(_http._HUB_ORIGINS | {_http._url_origin(url)}))
    try:
        from huggingface_hub import HfFileSystem

        HfFileSystem.clear_instance_cache()  # fsspec instance cache may hold a file system for an old server
    except Exception:  # pragma: no cover - best effort
        pass

    # `datasets.config` reads the env at import: if it is not imported yet, the env vars above are what it will see.
    datasets_config = sys.modules.get("datasets.config")
    if datasets_config is not None:
        monkeypatch.setattr(datasets_config, "HF_ENDPOINT", url)
        monkeypatch.setattr(datasets_config, "HUB_DATASETS_URL", url + "/datasets/{repo_id}/resolve/{revision}/{path}")
        monkeypatch.setattr(datasets_config, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(datasets_config, "HF_DATASETS_OFFLINE", False)
        monkeypatch.setattr(datasets_config, "HF_UPDATE_DOWNLOAD_COUNTS", False, raising=False)
        if cache_dir is not None:
            ds_cache = Path(env["HF_DATASETS_CACHE"])
            monkeypatch.setattr(datasets_config, "HF_DATASETS_CACHE", ds_cache)
            monkeypatch.setattr(datasets_config, "DOWNLOADED_DATASETS_PATH", ds_cache / "downloads", raising=False)
            monkeypatch.setattr(
                datasets_config, "EXTRACTED_DATASETS_PATH", ds_cache / "downloads" / "extracted", raising=False
            )


def _forget_server_in_hfapi_instances(url: str) -> None:
    """After teardown: HfApi instances created *during* the test (so not restored by monkeypatch) still point at
    the stopped server; move them back to the (restored) default endpoint so later tests don't hit a dead port."""
    try:
        from huggingface_hub import constants, hf_api
    except ImportError:  # pragma: no cover
        return
    for module_name, module in list(sys.modules.items()):
        if module is None or module_name.split(".")[0] not in _PATCHED_PACKAGES:
            continue
        for value in list(vars(module).values()):
            if isinstance(value, hf_api.HfApi) and value.endpoint == url:
                value.endpoint = constants.ENDPOINT
                value._whoami_cache = {}


def _close_hf_session() -> None:
    try:
        import huggingface_hub

        huggingface_hub.close_session()  # drop pooled keep-alive connections to the stopped server
        from huggingface_hub import HfFileSystem

        HfFileSystem.clear_instance_cache()
    except Exception:  # pragma: no cover - best effort
        pass


try:
    import pytest
except ImportError:  # pragma: no cover - the module is also usable without pytest
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture
    def local_hub(monkeypatch: Any, tmp_path_factory: Any) -> Iterator[LocalHubServer]:
        """A running `LocalHubServer` with huggingface_hub/transformers/peft/datasets pointed at it.

        Sets `HF_ENDPOINT`, a dummy `HF_TOKEN` (accepted by the server), `HF_HUB_DISABLE_XET=1`, unsets
        `HF_HUB_OFFLINE`/`TRANSFORMERS_OFFLINE`/`HF_DATASETS_OFFLINE`, redirects the HF caches to a temp dir and
        patches the import-time copies of those settings. Everything is restored and the server is stopped at
        teardown. Repos are created under `local_hub.username` ("test-user") unless a namespace is given.
        """
        root = tmp_path_factory.mktemp("local_hub_root")
        cache = tmp_path_factory.mktemp("local_hub_cache")
        server = LocalHubServer(root=root)
        server.start()
        try:
            with monkeypatch.context() as mp:
                patch_hf_clients(mp, server, cache_dir=cache)
                try:
                    yield server
                finally:
                    _close_hf_session()
        finally:
            url = server.url
            server.stop()
            _forget_server_in_hfapi_instances(url)
            _close_hf_session()
            if server.unhandled:
                print(
                    "[hub_server] requests that hit no route during this test:\n  " + "\n  ".join(server.unhandled),
                    file=sys.stderr,
                )
