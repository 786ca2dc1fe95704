"""Clone over https-style HTTP with a token: git's smart HTTP served on loopback by git-http-backend.

The server insists on the Basic credentials; the token never appears in the
step log, the state file or the run directory after the clone.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from devops.engines.base import GitAuth
from tests.engines.conftest import (
    config,
    log_of,
    make_engine,
    make_spec,
    script,
    step_of,
    wait_done,
)
from tests.gitserver import basic, git_http_server

TOKEN = "tok-9f8e7d6c5b4a"


def test_clone_with_token_over_http(repo, data_dir, tmp_path):
    bare = tmp_path / "srv" / "app.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.path), str(bare)], check=True)
    with git_http_server(bare.parent, basic("ci", TOKEN)) as server:
        url = f"{server.base_url}/app.git"
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
