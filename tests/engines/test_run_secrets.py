"""Secrets a run writes to its run directory are gone after cleanup() (issue 8, point 5).

A real run with the sandbox runtime: the clone, then a publish step whose
push goes to a closed loopback port with a registry credential (so buildah's
auth file is written), plus an envFrom secret (spec.json).
"""
from __future__ import annotations

import os

import pytest

from devops.engines.base import GitAuth
from tests.conftest import require_tool

from .conftest import config, make_engine, make_spec, step_of, wait_done

PASSWORD = "PLANTED-registry-pw-7e1d"
TOKEN = "PLANTED-git-token-52aa"
SECRET = "PLANTED-envfrom-value-0c3b"


def files_under(path) -> dict[str, bytes]:
    out = {}
    for dirpath, _dirs, names in os.walk(path):
        for name in names:
            p = os.path.join(dirpath, name)
            with open(p, "rb") as f:
                out[os.path.relpath(p, path)] = f.read()
    return out


@pytest.mark.services
def test_cleanup_removes_every_credential_file_of_the_run(repo, data_dir):
    require_tool("buildah")
    require_tool("bwrap")
    repo.commit("Dockerfile", "FROM scratch\nCOPY version.txt /version.txt\n")
    cfg = config([{"name": "Publish", "steps": [{
        "type": {"kind": "publishImageConfig", "tag": "127.0.0.1:9/demo/app:1", "pushRemote": True},
        "envFrom": [{"sourceName": "s", "sourceKey": "k", "targetKey": "K"}]}]}])
    spec = make_spec(repo, cfg, registry_auth={"127.0.0.1:9": ("robot", PASSWORD)},
                     secrets={"s": {"k": SECRET}}, git_auth=GitAuth(token=TOKEN),
                     mask=(PASSWORD, TOKEN, SECRET))
    engine = make_engine(data_dir, "sandbox")
    handle = engine.run(spec)
    report = wait_done(engine, spec, handle, timeout=120)
    assert report.state == "Failed" and step_of(report, 1, 0).state == "Failed"  # nothing listens on :9
    rd = engine.run_dir(spec.execution)
    before = files_under(rd)
    # The run really wrote credentials there (else this test proves nothing).
    assert any(name.startswith("containers/auth-") for name in before), sorted(before)
    assert any(PASSWORD.encode() in data or b"cm9ib3Q6" in data for data in before.values())
    assert "spec.json" in before

    engine.cleanup(spec, handle)
    after = files_under(rd)
    assert set(after) <= {"state.json", "runner.json", "runner.log", "claimed", ".lock", "stop"}, sorted(after)
    for name, data in after.items():
        for value in (PASSWORD, TOKEN, SECRET):
            assert value.encode() not in data, f"{value} left in {name}"
    assert not engine.workspace(spec.execution).exists()
    # Idempotent, and sync() still reports the finished run.
    engine.cleanup(spec, handle)
    assert engine.sync(spec, handle).state == "Failed"
