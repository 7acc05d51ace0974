"""A loopback HTTP server speaking the part of the Hugging Face Hub API that `HfApi.create_repo`
and `HfApi.upload_folder` use (repo creation, pre-upload, NDJSON commits of regular files), so the
publish step runs the real huggingface_hub client with no network. Every file committed is kept
in memory per repository; requests are logged (with their Authorization header) for the tests."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class HubState:
    repos: dict[str, dict] = field(default_factory=dict)          # repo id -> {"private": bool, "files": {path: bytes}}
    commits: list[dict] = field(default_factory=list)
    validated_cards: list[dict] = field(default_factory=list)   # README front matter the client sent for checking
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # (method, path, authorization)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    state: HubState

    def log_message(self, *args):  # quiet
        pass

    def _reply(self, status: int, body: dict | list | None = None) -> None:
        data = json.dumps(body if body is not None else {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Request-Id", "stub")
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _record(self) -> None:
        with self.state.lock:
            self.state.requests.append((self.command, self.path, self.headers.get("Authorization")))

    def do_GET(self):  # noqa: N802
        self._record()
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts[:2] == ["api", "whoami-v2"]:
            return self._reply(200, {"name": "publisher", "type": "user", "auth": {}})
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            repo = "/".join(parts[2:4])
            if repo not in self.state.repos:
                return self._reply(404, {"error": "Repository not found"})
            files = self.state.repos[repo]["files"]
            return self._reply(200, {"id": repo, "sha": self._sha(repo), "private": self.state.repos[repo]["private"],
                                     "siblings": [{"rfilename": p} for p in sorted(files)]})
        return self._reply(404, {"error": f"not in the stub: GET {self.path}"})

    def _sha(self, repo: str) -> str:
        files = self.state.repos[repo]["files"]
        return hashlib.sha1(json.dumps(sorted((p, hashlib.sha256(b).hexdigest()) for p, b in files.items())).encode()).hexdigest()

    def do_POST(self):  # noqa: N802
        self._record()
        body = self._body()
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts == ["api", "validate-yaml"]:   # the client checks a README's metadata before committing it
            import yaml

            content = json.loads(body)["content"]
            try:
                metadata = yaml.safe_load(content.split("---", 2)[1]) if content.startswith("---") else {}
            except yaml.YAMLError as exc:
                return self._reply(400, {"errors": [{"message": f"invalid YAML: {exc}"}]})
            with self.state.lock:
                self.state.validated_cards.append(metadata or {})
            return self._reply(200, {"errors": [], "warnings": []})
        if parts == ["api", "repos", "create"]:
            request = json.loads(body)
            repo = f"{request.get('organization') or 'publisher'}/{request['name']}"
            with self.state.lock:
                if repo in self.state.repos:
                    return self._reply(409, {"error": "You already created this model repo", "url": f"/{repo}"})
                private = request.get("visibility", "private" if request.get("private") else "public") == "private"
                self.state.repos[repo] = {"private": private, "files": {}}
            return self._reply(200, {"url": f"http://{self.headers['Host']}/{repo}", "name": repo})
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "preupload":
            files = json.loads(body)["files"]
            return self._reply(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                               for f in files], "commitOid": None})
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "commit":
            repo = "/".join(parts[2:4])
            if repo not in self.state.repos:
                return self._reply(404, {"error": "Repository not found"})
            header, written = {}, {}
            for line in body.decode().splitlines():
                item = json.loads(line)
                if item["key"] == "header":
                    header = item["value"]
                elif item["key"] == "file":
                    value = item["value"]
                    written[value["path"]] = base64.b64decode(value["content"])
                else:
                    return self._reply(400, {"error": f"the stub takes regular files only, not {item['key']}"})
            with self.state.lock:
                self.state.repos[repo]["files"].update(written)
                self.state.commits.append({"repo": repo, "summary": header.get("summary"), "files": sorted(written)})
                oid = self._sha(repo)
            return self._reply(200, {"commitUrl": f"http://{self.headers['Host']}/{repo}/commit/{oid}",
                                     "commitOid": oid, "success": True})
        return self._reply(404, {"error": f"not in the stub: POST {self.path}"})


class HubStub:
    def __init__(self):
        self.state = HubState()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "HubStub":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
