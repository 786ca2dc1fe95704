"""A real smart-HTTP git server on loopback (Debian git's `git http-backend`) that demands Basic auth."""
from __future__ import annotations

import base64
import contextlib
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.conftest import require_service

BACKEND = "/usr/lib/git-core/git-http-backend"


def basic(user: str, token: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()


@dataclass
class GitServer:
    base_url: str                                       # http://127.0.0.1:PORT
    seen: list[str] = field(default_factory=list)       # Authorization headers received
    paths: list[str] = field(default_factory=list)      # "GET /app/info/refs?service=..." per request


@contextlib.contextmanager
def git_http_server(root: Path, expect_auth: str) -> Iterator[GitServer]:
    """Serve the repositories under `root`; requests without `expect_auth` get 401."""
    require_service(os.path.exists(BACKEND), "git-http-backend (Debian git)")
    server_info = GitServer("")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def _cgi(self) -> None:
            auth = self.headers.get("Authorization", "")
            server_info.seen.append(auth)
            server_info.paths.append(f"{self.command} {self.path}")
            if auth != expect_auth:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.end_headers()
                return
            path, _, query = self.path.partition("?")
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            env = {
                "GIT_PROJECT_ROOT": str(root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "REQUEST_METHOD": self.command,
                "REMOTE_USER": "ci",
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                "PATH": os.environ["PATH"],
            }
            out = subprocess.run([BACKEND], input=body, env=env, capture_output=True).stdout
            head, _, payload = out.partition(b"\r\n\r\n")
            status = 200
            headers = []
            for line in head.split(b"\r\n"):
                name, _, value = line.decode().partition(":")
                if name.lower() == "status":
                    status = int(value.split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _cgi

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_info.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server_info
    finally:
        server.shutdown()
        server.server_close()
