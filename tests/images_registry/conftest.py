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
def registry(image_data_dir):
    """The real docker-registry, started by ensure_registry on a free loopback port."""
    require_tool("docker-registry")
    from devops.registry.server import ensure_registry, stop_registry

    info = ensure_registry(image_data_dir, notify_url="")
    yield info
    stop_registry(image_data_dir)


class Log(io.BytesIO):
    @property
    def text(self) -> str:
        return self.getvalue().decode(errors="replace")


def make_ctx(*, data_dir: Path, workspace: Path, run_dir: Path, stages: list[dict],
             stage: int = 1, step: int = 0, env: dict[str, str] | None = None,
             settings: dict[str, str] | None = None, registry_auth=None,
             project: str = "p-test", pipeline: str = "pl-test", cache=None, execution: str = "p-test-1"):
    """A StepContext for stages given as plain pipeline-file dicts (Clone is prepended)."""
    from devops.engines.base import RunSpec
    from devops.engines.local.context import StepContext
    from devops.pipeline.config import PipelineConfig

    raw = {"stages": [{"name": "Clone", "steps": [{"type": {"kind": "sourceCodeConfig"}}]}, *stages]}
    if cache is not None:
        raw["cache"] = cache
    config = PipelineConfig.model_validate(raw)
    spec = RunSpec(execution=execution, project_id=project, pipeline_id=pipeline, run=1,
                   repository_url="file:///dev/null", commit="0" * 40, branch="main", ref="refs/heads/main",
                   event="", trigger_type="user", config=config, env=dict(env or {}),
                   settings=dict(settings or {}), registry_auth=dict(registry_auth or {}))
    for p in (workspace, run_dir):
        p.mkdir(parents=True, exist_ok=True)
    return StepContext(spec=spec, stage=stage, step=step, config=config.step(stage, step),
                       workspace=workspace, run_dir=run_dir, data_dir=data_dir,
                       env=dict(env or {}), log=Log(), deadline=time.monotonic() + 120)
