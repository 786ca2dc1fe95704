"""Controller fixtures: an isolated data dir, configs built in code, a git repository, a fake engine."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from devops.pipeline.config import PipelineConfig, RunScriptConfig, SourceCodeConfig, Stage, Step

from .fakes import FakeEngine

PIPELINE_YAML = """\
stages:
- name: Build
  steps:
  - runScriptConfig:
      image: busybox
      shellScript: echo hello
"""


@pytest.fixture
def data_dir(tmp_path, settings):
    """DATA_DIR, logs and workspaces under tmp_path (doorbell, heartbeats, mirrors too)."""
    from devops.logs import get_log_store

    d = tmp_path / "data"
    d.mkdir()
    settings.DATA_DIR = d
    settings.SLIPWAY_LOG_STORE = f"file://{d / 'logs'}"
    settings.SLIPWAY_WORKSPACE_DIR = d / "workspaces"
    get_log_store.cache_clear()
    yield d
    get_log_store.cache_clear()


@pytest.fixture
def engine():
    return FakeEngine()


def make_config(*stages: list[dict], timeout: int = 60) -> PipelineConfig:
    """Clone + one stage per list of step env dicts, e.g. make_config([{}], [{"EXIT": "1"}])."""
    clone = Stage(name="Clone", steps=(Step(type=SourceCodeConfig()),))
    out = [clone]
    for i, steps in enumerate(stages or ([{}],)):
        out.append(Stage(name=f"S{i + 1}", steps=tuple(
            Step(type=RunScriptConfig(image="busybox", shellScript="true"), env=tuple(env.items()))
            for env in steps)))
    return PipelineConfig(stages=tuple(out), timeout=timeout)


def new_execution(pipeline, config: PipelineConfig | None = None, **fields):
    """An execution created through the action's own path, without reading git."""
    from devops.controller.actions import _create_execution

    values = {"branch": "master", "commit": "0" * 40, "ref": "refs/heads/master", "event": "",
              "message": "m", "author": "a", "author_email": "", "trigger_type": "user",
              "config_text": "", "temporary_config": False}
    values.update(fields)
    return _create_execution(pipeline, config=config or make_config(), **values)


@pytest.fixture
def pipeline(project, data_dir):
    from devops.models import Pipeline

    return Pipeline.objects.create(project=project, repository_url="/nonexistent/repo", default_branch="master")


def git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "Tess", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "Tess",
           "GIT_COMMITTER_EMAIL": "t@example.com", "HOME": str(cwd), "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def make_repo(path: Path, files: dict[str, str], branch: str = "main") -> str:
    """A git repository at `path` with one commit of `files`; returns the commit id."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", branch)
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "first commit")
    return git(path, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path) -> Path:
    path = tmp_path / "repo"
    make_repo(path, {".devops.yml": PIPELINE_YAML, "README": "hi\n"})
    return path
