"""Fixtures for the registry / image tests: a real docker-registry and buildah storage.

Nothing is pulled: the base image is built from Debian's busybox-static by
tests/images.py (`busybox_image`) into buildah's vfs storage, and the
registry is the real docker-registry on a free loopback port, started by the
product's own `ensure_registry`.
"""
from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from tests.conftest import require_tool

BASE_IMAGE = "localhost/busybox:latest"   # tests/images.py builds it from busybox-static


@pytest.fixture(scope="session")
def image_data_dir(busybox_image) -> Path:
    """A data dir whose `containers/` is the session's buildah storage holding the busybox image.

    The product's layout: DATA_DIR/containers is both the container runtime's
    and the publish step's storage; DATA_DIR/registry the built-in registry.
    """
    assert busybox_image.root.name == "containers" and busybox_image.name == BASE_IMAGE
    return busybox_image.root.parent


@pytest.fixture(scope="session")
def registry_server(image_data_dir, live_server):
    """The real docker-registry, started by ensure_registry on a free loopback port, with token
    auth whose realm is Slipway's real token view served by the session's live server."""
    require_tool("docker-registry")
    from devops.registry.server import ensure_registry, stop_registry
    from devops.registry.tokens import TOKEN_PATH

    info = ensure_registry(image_data_dir, notify_url="", token_realm=live_server.url + TOKEN_PATH)
    yield info
    stop_registry(image_data_dir)


@pytest.fixture
def registry(registry_server, image_data_dir, settings):
    """The running registry (Slipway's internal account, never a step's); the token view
    reads its state from DATA_DIR, so DATA_DIR is its data dir for the test."""
    settings.DATA_DIR = image_data_dir
    return registry_server


def run_auth(data_dir: Path, project: str = "p-test", *, trusted: bool = True,
             execution: str = "") -> dict[str, tuple[str, str]]:
    """What controller/spec.py gives a run of `project` for the built-in registry: {address: credential}
    (for a pull request's run `execution`: push of its own `<project>/pr/<execution>/` only)."""
    from devops.registry.server import project_auth, registry_info

    info = registry_info(data_dir)
    cred = project_auth(data_dir, project, trusted=trusted, execution=execution) if info else None
    return {info.address: cred} if cred else {}


class Log(io.BytesIO):
    @property
    def text(self) -> str:
        return self.getvalue().decode(errors="replace")


def make_ctx(*, data_dir: Path, workspace: Path, run_dir: Path, stages: list[dict],
             stage: int = 1, step: int = 0, env: dict[str, str] | None = None,
             settings: dict[str, str] | None = None, registry_auth=None,
             project: str = "p-test", pipeline: str = "pl-test", cache=None, execution: str = "p-test-1",
             event: str = ""):
    """A StepContext for stages given as plain pipeline-file dicts (Clone is prepended).

    `registry_auth` None: the project's credential for the built-in registry, as
    controller/spec.py hands it (for `event="pull_request"`: push of its `<project>/pr/<execution>/` only).
    """
    from devops.engines.base import UNTRUSTED_EVENTS, RunSpec
    from devops.engines.local.context import StepContext
    from devops.pipeline.config import PipelineConfig

    raw = {"stages": [{"name": "Clone", "steps": [{"type": {"kind": "sourceCodeConfig"}}]}, *stages]}
    if cache is not None:
        raw["cache"] = cache
    config = PipelineConfig.model_validate(raw)
    spec = RunSpec(execution=execution, project_id=project, pipeline_id=pipeline, run=1,
                   repository_url="file:///dev/null", commit="0" * 40, branch="main", ref="refs/heads/main",
                   event=event, trigger_type="user", config=config, env=dict(env or {}),
                   settings=dict(settings or {}),
                   registry_auth=dict(run_auth(data_dir, project, trusted=event not in UNTRUSTED_EVENTS,
                                               execution=execution)
                                      if registry_auth is None else registry_auth))
    for p in (workspace, run_dir):
        p.mkdir(parents=True, exist_ok=True)
    return StepContext(spec=spec, stage=stage, step=step, config=config.step(stage, step),
                       workspace=workspace, run_dir=run_dir, data_dir=data_dir,
                       env=dict(env or {}), log=Log(), deadline=time.monotonic() + 120)
