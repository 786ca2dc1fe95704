"""`pipeline run` / `pipeline logs` while the S3 log store is unreachable: the run's
output still shows (from this machine's spool) and the command never crashes."""
from __future__ import annotations

import shutil

import pytest

from tests.conftest import pipeline_cmd
from tests.controller.conftest import make_repo
from tests.logs.conftest import free_port

YAML = """\
stages:
- name: Build
  steps:
  - runScriptConfig: {image: busybox, shellScript: echo built while S3 was down}
- name: Test
  steps:
  - runScriptConfig: {image: busybox, shellScript: echo tested}
"""


@pytest.fixture
def dead_s3(tmp_path, settings, db):
    from devops.logs import get_log_store

    d = tmp_path / "data"
    d.mkdir()
    settings.DATA_DIR = d
    settings.SLIPWAY_WORKSPACE_DIR = d / "workspaces"
    settings.SLIPWAY_STEP_RUNTIME = "host"
    # Nothing listens on this port: every S3 call is refused.
    settings.SLIPWAY_LOG_STORE = f"s3://k:s@127.0.0.1:{free_port()}/logs?secure=false"
    get_log_store.cache_clear()
    yield d
    get_log_store.cache_clear()


def test_run_and_logs_while_s3_is_unreachable(dead_s3, tmp_path):
    repo = tmp_path / "app"
    make_repo(repo, {".devops.yml": YAML})
    code, out, err = pipeline_cmd("run", str(repo))
    assert code == 0, out + err                                    # the run's result, not a traceback
    assert "[1.0 Build] built while S3 was down" in out and "[2.0 Test] tested" in out
    name = out.strip().splitlines()[-1].split(":")[0]
    code, out, err = pipeline_cmd("logs", name, "--stage", "1", "--step", "0")
    assert code == 0 and out.endswith("\nbuilt while S3 was down\n"), out + err
    code, out, err = pipeline_cmd("logs", name)
    assert code == 0 and "==> 2.0 Test" in out and "tested" in out, out + err
    # A log that is neither in the spool nor reachable: a clear error, exit 1.
    shutil.rmtree(dead_s3 / "log-spool")
    code, out, err = pipeline_cmd("logs", name, "--stage", "1", "--step", "0")
    assert code == 1 and "log store unreachable" in err and "Traceback" not in err, out + err
