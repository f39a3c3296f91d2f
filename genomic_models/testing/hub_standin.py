"""A small loopback stand-in of the Hugging Face Hub HTTP API, for offline tests of push and download.

Point the real `huggingface_hub` client at it with `HF_ENDPOINT=http://127.0.0.1:<port>` (set before the client is
imported, e.g. in a child process), then `push_to_hub`, `create_repo`, `upload_folder`, `hf_hub_download` and
`from_pretrained(repo_id)` talk to it.

What it implements (model repositories only, one branch `main`, everything in memory):
- POST /api/repos/create: create a repository (409 if it exists, unless the client passes exist_ok).
- GET  /api/models/{repo}[/revision/{rev}]: repository info with its file list (`siblings`) and head sha.
- GET  /api/models/{repo}/tree/{rev}[/{path}]: the files under a path, flat (no folder entries, no pagination).
- POST /api/models/{repo}/paths-info/{rev}: info of given paths.
- POST /api/models/{repo}/preupload/{rev}: every file is uploaded inline ("regular" mode, never LFS or Xet).
- POST /api/models/{repo}/commit/{rev}: NDJSON commits of base64 file additions and deletions.
- POST /api/validate-yaml: accepts any card metadata.
- GET  /api/whoami-v2: a fixed user, so token checks pass.
- HEAD/GET /{repo}/resolve/{rev}/{path}: file download with the headers `hf_hub_download` expects (ETag, commit).

Every revision (a branch name or a commit sha) resolves to the latest files: there is no history to check out.
What it does not implement: LFS and Xet uploads (files of any size go inline), pull requests, branches and tags other
than `main`, datasets and spaces, authentication (any token is accepted), rate limits, and the web pages. Requests it
does not know get a 404 with an `X-Error-Code` and are recorded in `unknown_requests`, so a test can show what a new
client version started to call.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

USER = "genomic-tester"


@dataclass
class Repository:
    files: dict[str, bytes] = field(default_factory=dict)
    commits: list[dict] = field(default_factory=list)

    @property
    def sha(self) -> str:
        return self.commits[-1]["oid"] if self.commits else "0" * 40


class HubStandIn:
    """A threaded HTTP server on 127.0.0.1 holding repositories in memory; use as a context manager."""

    def __init__(self, port: int = 0):
        self.repositories: dict[str, Repository] = {}
        self.unknown_requests: list[str] = []
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> HubStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- repository operations ---------------------------------------------------------------------------------------
    def create(self, repo_id: str, exist_ok: bool) -> tuple[int, dict]:
        with self._lock:
            if repo_id in self.repositories and not exist_ok:
                return 409, {"error": "You already created this model repo", "url": f"{self.endpoint}/{repo_id}"}
            self.repositories.setdefault(repo_id, Repository())
        return 200, {"url": f"{self.endpoint}/{repo_id}", "name": repo_id, "id": repo_id}

    def commit(self, repo_id: str, lines: list[dict]) -> tuple[int, dict]:
        with self._lock:
            repository = self.repositories.get(repo_id)
            if repository is None:
                return 404, {"error": f"Repository {repo_id} not found"}
            header = next((line["value"] for line in lines if line.get("key") == "header"), {})
            for line in lines:
                value = line.get("value", {})
                if line.get("key") == "file":
                    if value.get("encoding", "base64") != "base64":
                        return 400, {"error": f"unsupported encoding {value.get('encoding')}"}
                    repository.files[value["path"]] = base64.b64decode(value["content"])
                elif line.get("key") == "deletedFile":
                    repository.files.pop(value["path"], None)
                elif line.get("key") in ("lfsFile", "deletedFolder", "copyFile"):
                    return 400, {"error": f"the stand-in does not implement {line['key']} operations"}
            digest = hashlib.sha1(repr((repository.sha, sorted(repository.files.items()))).encode()).hexdigest()
            repository.commits.append({"oid": digest, "title": header.get("summary", "")})
        return 200, {
            "commitUrl": f"{self.endpoint}/{repo_id}/commit/{digest}",
            "commitOid": digest,
            "pullRequestUrl": None,
        }

    def info(self, repo_id: str) -> tuple[int, dict]:
        repository = self.repositories.get(repo_id)
        if repository is None:
            return 404, {"error": f"Repository {repo_id} not found"}
        return 200, {
            "id": repo_id,
            "modelId": repo_id,
            "sha": repository.sha,
            "private": False,
            "siblings": [{"rfilename": path} for path in sorted(repository.files)],
            "tags": [],
            "lastModified": "2026-01-01T00:00:00.000Z",
            "author": repo_id.split("/")[0],
        }

    def _handler_class(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # quiet: tests read `hub.requests` instead
                pass

            def _send(
                self,
                status: int,
                body: bytes = b"",
                headers: dict | None = None,
                content_type: str = "application/json",
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _json(self, status: int, payload, headers: dict | None = None) -> None:
                extra = dict(headers or {})
                if status == 404:
                    extra.setdefault("X-Error-Code", "RepoNotFound")
                    extra.setdefault("X-Error-Message", payload.get("error", "not found"))
                self._send(status, json.dumps(payload).encode(), extra)

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length", 0) or 0)
                if length:
                    return self.rfile.read(length)
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    return b"".join(chunks)
                return b""

            def _route(self) -> None:
                path = unquote(urlparse(self.path).path)
                hub.requests.append(f"{self.command} {path}")
                body = self._body() if self.command == "POST" else b""
                parts = path.strip("/").split("/")
                if path == "/api/whoami-v2":
                    return self._json(
                        200, {"type": "user", "name": USER, "orgs": [], "auth": {"accessToken": {"role": "write"}}}
                    )
                if path == "/api/validate-yaml":
                    return self._json(200, {})
                if path == "/api/repos/create" and self.command == "POST":
                    request = json.loads(body or b"{}")
                    repo_id = "/".join(filter(None, [request.get("organization") or USER, request["name"]]))
                    if "/" in request["name"]:
                        repo_id = request["name"]
                    status, payload = hub.create(repo_id, exist_ok=False)
                    return self._json(status, payload)
                if parts[:2] == ["api", "models"] and len(parts) >= 4:
                    repo_id = "/".join(parts[2:4])
                    rest = parts[4:]
                    if not rest or rest[0] == "revision":
                        return self._json(*hub.info(repo_id))
                    if rest[0] == "preupload":
                        request = json.loads(body or b"{}")
                        files = [
                            {"path": item["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None}
                            for item in request.get("files", [])
                        ]
                        return self._json(200, {"files": files})
                    if rest[0] == "commit":
                        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
                        return self._json(*hub.commit(repo_id, lines))
                    if rest[0] in ("tree", "paths-info"):
                        status, payload = hub.info(repo_id)
                        if status != 200:
                            return self._json(status, payload)
                        repository = hub.repositories[repo_id]
                        wanted, prefix = None, "/".join(rest[2:])
                        if rest[0] == "paths-info":
                            form = body.decode()
                            wanted = (
                                set(json.loads(form).get("paths", []))
                                if form.startswith("{")
                                else {
                                    unquote(item.split("=", 1)[1])
                                    for item in form.split("&")
                                    if item.startswith("paths=")
                                }
                            )
                        entries = [
                            {"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                            for name, data in sorted(repository.files.items())
                            if (wanted is None or name in wanted) and name.startswith(prefix)
                        ]
                        if prefix and not entries:
                            return self._json(404, {"error": f"{prefix} not found"}, {"X-Error-Code": "EntryNotFound"})
                        return self._json(200, entries)
                if len(parts) >= 5 and parts[2] == "resolve":
                    repo_id, filename = "/".join(parts[:2]), "/".join(parts[4:])
                    repository = hub.repositories.get(repo_id)
                    if repository is None:
                        return self._json(404, {"error": f"Repository {repo_id} not found"})
                    if filename not in repository.files:
                        return self._json(
                            404,
                            {"error": f"Entry {filename} not found"},
                            {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": repository.sha},
                        )
                    data = repository.files[filename]
                    etag = hashlib.sha1(data).hexdigest()
                    return self._send(
                        200,
                        data,
                        {"ETag": f'"{etag}"', "X-Repo-Commit": repository.sha},
                        content_type="application/octet-stream",
                    )
                hub.unknown_requests.append(f"{self.command} {path}")
                return self._json(
                    404,
                    {"error": f"the Hub stand-in does not implement {self.command} {path}"},
                    {"X-Error-Code": "NotImplementedInStandIn"},
                )

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _route

        return Handler


__all__ = ["HubStandIn", "USER"]
