"""Clone over https-style HTTP with a token: git's smart HTTP served on loopback by git-http-backend.

The server insists on the Basic credentials; the token never appears in the
step log, the state file or the run directory after the clone.
"""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from devops.engines.base import GitAuth
from tests.conftest import require_service
from tests.engines.conftest import (
    config,
    log_of,
    make_engine,
    make_spec,
    script,
    step_of,
    wait_done,
)

BACKEND = "/usr/lib/git-core/git-http-backend"
TOKEN = "tok-9f8e7d6c5b4a"


def _server(root: Path, expect: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def _cgi(self) -> None:
            if self.headers.get("Authorization") != expect:
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

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


def test_clone_with_token_over_http(repo, data_dir, tmp_path):
    require_service(os.path.exists(BACKEND), "git-http-backend (Debian git)")
    bare = tmp_path / "srv" / "app.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.path), str(bare)], check=True)
    expect = "Basic " + base64.b64encode(f"ci:{TOKEN}".encode()).decode()
    server = _server(bare.parent, expect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/app.git"
        engine = make_engine(data_dir)
        cfg = config([{"name": "B", "steps": [script("cat version.txt")]}])
        ok = make_spec(
            repo,
            cfg,
            name="p-http-1",
            repository_url=url,
            git_auth=GitAuth(token=TOKEN, username="ci"),
        )
        report = wait_done(engine, ok, engine.run(ok))
        assert report.state == "Success", log_of(data_dir, ok, 0, 0)
        assert "one\n" in log_of(data_dir, ok, 1, 0)
        for stage, step in ((0, 0), (1, 0)):
            assert TOKEN not in log_of(data_dir, ok, stage, step)
        run_dir = Path(engine.run_dir(ok.execution))
        assert TOKEN not in (run_dir / "state.json").read_text()
        engine.cleanup(ok, {})
        assert not any(
            TOKEN in p.read_text(errors="replace") for p in run_dir.rglob("*") if p.is_file()
        )

        bad = make_spec(
            repo,
            cfg,
            name="p-http-2",
            repository_url=url,
            git_auth=GitAuth(token="wrong", username="ci"),
        )
        report = wait_done(engine, bad, engine.run(bad))
        assert report.state == "Failed"
        assert "git clone of" in step_of(report, 0, 0).message
    finally:
        server.shutdown()
        server.server_close()
