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

from .conftest import config, log_of, make_engine, make_spec, script, step_of, wait_done

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


def _gens(data_dir) -> list[str]:
    return sorted(str(p.relative_to(data_dir)) for p in (data_dir / "cache").rglob("gen-*"))


@pytest.mark.services
def test_pull_request_runs_restore_but_never_publish_caches_and_never_push_remote(repo, data_dir):
    require_tool("bwrap")
    cfg = config([
        {"name": "Build", "steps": [script("mkdir -p deps; cat deps/f 2>/dev/null || true; echo built > deps/f",
                                           cache={"paths": ["deps"]})]},
        {"name": "Publish", "steps": [{"type": {"kind": "publishImageConfig", "tag": "127.0.0.1:9/app:1",
                                                "pushRemote": True}}]},
    ])
    engine = make_engine(data_dir, "sandbox")

    pr = make_spec(repo, cfg, name="p-test-1", event="pull_request")
    report = wait_done(engine, pr, engine.run(pr), timeout=60)
    build = log_of(data_dir, pr, 1, 0)
    assert step_of(report, 1, 0).state == "Success", build
    assert "cache not saved: deps (runs of pull requests never publish caches)" in build
    assert _gens(data_dir) == []
    publish = step_of(report, 2, 0)
    assert publish.state == "Failed" and "never push to remote registries" in publish.message
    assert "never push to remote registries" in log_of(data_dir, pr, 2, 0)

    # The same pipeline on a push saves the cache; a later pull request restores it (and still saves nothing).
    push = make_spec(repo, cfg, name="p-test-2", event="push")
    report = wait_done(engine, push, engine.run(push), timeout=60)
    assert "cache saved: deps" in log_of(data_dir, push, 1, 0)
    saved = _gens(data_dir)
    assert len(saved) == 1
    assert "never push to remote registries" not in step_of(report, 2, 0).message
    pr2 = make_spec(repo, cfg, name="p-test-3", event="pull_request")
    wait_done(engine, pr2, engine.run(pr2), timeout=60)
    log = log_of(data_dir, pr2, 1, 0)
    assert "cache restored: deps" in log and "built" in log and "cache not saved" in log
    assert _gens(data_dir) == saved
