"""Helpers for engine tests: a git repository in tmp_path, RunSpecs, an engine on tmp dirs."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devops.engines.base import RunReport, RunSpec
from devops.engines.local.engine import LocalEngine
from devops.engines.local.options import LocalOptions
from devops.pipeline.config import PipelineConfig

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
    "PATH": os.environ["PATH"],
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, env=GIT_ENV, check=True, capture_output=True, text=True
    ).stdout.strip()


@dataclass
class Repo:
    path: Path
    commits: list[str]

    @property
    def url(self) -> str:
        return str(self.path)

    def commit(self, name: str, content: str) -> str:
        (self.path / name).write_text(content)
        git(self.path, "add", name)
        git(self.path, "commit", "-q", "-m", f"change {name}")
        sha = git(self.path, "rev-parse", "HEAD")
        self.commits.append(sha)
        return sha


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    r = Repo(path, [])
    r.commit("version.txt", "one\n")
    return r


def config(stages: list[dict[str, Any]], **top: Any) -> PipelineConfig:
    """A normalised config: the Clone stage first, then `stages` (Rancher's camelCase, `type` = step kind)."""
    out = [{"name": "Clone", "steps": [{"type": {"kind": "sourceCodeConfig"}}]}]
    for stage in stages:
        for step in stage["steps"]:
            if isinstance(step.get("env"), dict):
                step["env"] = list(step["env"].items())
    out += stages
    return PipelineConfig.model_validate({"stages": out, **top})


def script(sh: str, image: str = "localhost/busybox:latest", **step: Any) -> dict[str, Any]:
    return {"type": {"kind": "runScriptConfig", "image": image, "shellScript": sh}, **step}


def make_spec(repo: Repo, cfg: PipelineConfig, name: str = "p-test-1", **kw: Any) -> RunSpec:
    """A RunSpec; the execution is `name` plus this process's id.

    Step cgroups are machine-wide, named after the install's run directory
    and the execution (limits.step_cgroup_name); the suffix also keeps
    concurrent test runs' container names and logs apart.
    """
    name = f"{name}-{os.getpid()}"
    values: dict[str, Any] = dict(
        execution=name,
        project_id="p-test",
        pipeline_id="p-test",
        run=1,
        repository_url=repo.url,
        commit=repo.commits[-1],
        branch="main",
        ref="refs/heads/main",
        event="push",
        trigger_type="user",
        config=cfg,
    )
    values.update(kw)
    values.setdefault(
        "env",
        {
            "CICD_GIT_BRANCH": values["branch"],
            "CICD_GIT_COMMIT": values["commit"],
            "CICD_EXECUTION_ID": name,
            "CICD_EVENT": values["event"],
        },
    )
    return RunSpec(**values)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


def make_engine(data_dir: Path, runtime: str = "host", **kw: Any) -> LocalEngine:
    opts = LocalOptions(
        data_dir=data_dir,
        workspace_dir=data_dir / "workspaces",
        log_store_url=f"file://{data_dir / 'logs'}",
        step_runtime=runtime,
        **kw,
    )
    return LocalEngine(opts)


def wait_done(
    engine: LocalEngine, spec: RunSpec, handle: dict[str, Any], timeout: float = 20
) -> RunReport:
    end = time.monotonic() + timeout
    while True:
        report = engine.sync(spec, handle)
        if report.state not in ("Building", "Waiting"):
            return report
        if time.monotonic() > end:
            engine.stop(spec, handle)
            raise AssertionError(f"not finished after {timeout}s: {report}")
        time.sleep(0.02)


def log_of(data_dir: Path, spec: RunSpec, stage: int, step: int) -> str:
    from devops.logs.base import LogKey
    from devops.logs.filestore import FileLogStore

    return (
        FileLogStore(data_dir / "logs")
        .read(LogKey(spec.execution, stage, step))
        .decode(errors="replace")
    )


def step_of(report: RunReport, stage: int, step: int):
    return next(s for s in report.steps if (s.stage, s.step) == (stage, step))
