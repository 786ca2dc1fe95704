"""Fixtures for the logs tests: a real S3 API (moto_server) through the minio SDK,
Redis at 127.0.0.1:6379 (DB 11, ours alone), file stores, executions, subprocesses."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import port_open, require_service

ROOT = Path(__file__).resolve().parents[2]
REDIS_DB_URL = "redis://127.0.0.1:6379/11"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        if port_open("127.0.0.1", port, 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open in {timeout}s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture(scope="session")
def moto_endpoint():
    """host:port of a moto_server (S3 API) started for this session on a free loopback port."""
    exe = Path(sys.executable).parent / "moto_server"
    require_service(exe.exists(), f"moto_server (pip install 'moto[server]') at {exe}")
    port = free_port()
    proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        yield f"127.0.0.1:{port}"
    finally:
        stop(proc)


@pytest.fixture
def s3_url(moto_endpoint):
    """An s3:// URL with a fresh bucket (the writer creates it)."""
    return f"s3://testkey:testsecret@{moto_endpoint}/logs-{uuid.uuid4().hex[:10]}?secure=false"


@pytest.fixture
def s3_store(s3_url, tmp_path):
    from devops.logs.s3store import S3LogStore

    return S3LogStore.from_url(s3_url, spool_root=tmp_path / "spool", chunk_size=4096, flush_interval=0.1)


@pytest.fixture
def file_store(tmp_path):
    from devops.logs.filestore import FileLogStore

    return FileLogStore(tmp_path / "logs")


@pytest.fixture
def redis_url():
    require_service(port_open("127.0.0.1", 6379), "Redis at 127.0.0.1:6379")
    return REDIS_DB_URL


@pytest.fixture
def log_settings(settings, tmp_path):
    """SLIPWAY_LOG_STORE -> a file store under tmp_path; get_log_store() follows it."""
    from devops.logs import get_log_store

    settings.SLIPWAY_LOG_STORE = f"file://{tmp_path / 'logs'}"
    get_log_store.cache_clear()
    yield settings
    get_log_store.cache_clear()


@pytest.fixture
def execution(project):
    from devops.models import Pipeline, PipelineExecution

    pipeline = Pipeline.objects.create(project=project, repository_url="https://example.invalid/r.git")
    return PipelineExecution.objects.create(
        project=project, pipeline=pipeline, name=f"{pipeline.name}-1", run=1, execution_state="Building"
    )


def writer_process(store_url: str, execution: str, stage: int, step: int, env: dict | None = None,
                   **opts) -> subprocess.Popen:
    """A runner-like process: each stdin line is written to the step log at once; EOF closes it."""
    args = [sys.executable, "-m", "tests.logs.writer_proc", store_url, execution, str(stage), str(step)]
    for k, v in opts.items():
        args += [f"--{k.replace('_', '-')}", str(v)]
    full_env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    full_env.update(env or {})
    return subprocess.Popen(args, cwd=ROOT, env=full_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)


