"""Fixtures of the pipeline editor's tests: a pipeline whose repository is a real local git repository."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.controller import conftest as controller_fixtures
from tests.controller.conftest import git, make_repo

data_dir = controller_fixtures.data_dir  # the controller tests' DATA_DIR fixture, shared

PIPELINE_YAML = """\
# Build and test
stages:
- name: Build
  steps:
  - runScriptConfig:
      image: golang:1.22   # the toolchain
      shellScript: go build ./...
- name: Test
  steps:
  - runScriptConfig:
      image: golang:1.22
      shellScript: go test ./...
"""


@pytest.fixture
def bare_repo(tmp_path):
    """`bare_repo(files)` -> the path of a bare repository with one commit of `files` on main."""

    def make(files: dict[str, str] | None = None, name: str = "app") -> Path:
        work = tmp_path / f"{name}-work"
        make_repo(work, files if files is not None else {".devops.yml": PIPELINE_YAML})
        bare = tmp_path / f"{name}.git"
        subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
        return bare

    return make


@pytest.fixture
def edit_pipeline(project, data_dir, bare_repo):
    """Pipeline "app" of the demo project on a local bare repository (main has PIPELINE_YAML)."""
    from devops.models import Pipeline

    bare = bare_repo()
    pipe = Pipeline.objects.create(project=project, name="app", repository_url=str(bare), default_branch="main")
    pipe.bare = bare
    return pipe


def head_of(bare: Path, branch: str = "main") -> str:
    return git(bare, "rev-parse", f"refs/heads/{branch}")


@pytest.fixture
def served_repo(tmp_path):
    """`served_repo({path: bytes})` -> (url, username, token, bare path): files written byte for byte,
    one commit on main, served over loopback smart HTTP that demands the token (push included)."""
    from tests.gitserver import basic, git_http_server

    stack = []
    token, username = "editor-token-7c2e", "ci"

    def make(files: dict[str, bytes], name: str = "app"):
        work = tmp_path / f"{name}-src"
        work.mkdir()
        git(work, "init", "-q", "-b", "main")
        for path, data in files.items():
            (work / path).write_bytes(data)
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", "first commit")
        bare = tmp_path / "served" / f"{name}.git"
        subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
        git(bare, "config", "http.receivepack", "true")
        server = git_http_server(bare.parent, basic(username, token))
        info = server.__enter__()
        stack.append(server)
        return f"{info.base_url}/{name}.git", username, token, bare

    yield make
    for server in stack:
        server.__exit__(None, None, None)
