from __future__ import annotations

import pytest

from devops.engines.base import RunSpec
from devops.engines.jenkins.client import JenkinsClient
from devops.engines.jenkins.engine import JenkinsEngine
from devops.engines.jenkins.options import JenkinsOptions
from devops.logs.filestore import FileLogStore
from devops.pipeline import load
from tests.engines.jenkins.fake import FakeJenkins

PIPELINE = """\
stages:
- name: Build
  steps:
  - runScriptConfig:
      image: golang:1.22
      shellScript: go test ./...
    env:
      GOFLAGS: -mod=vendor
    envFrom:
    - sourceName: deploy-keys
      sourceKey: TOKEN
      targetKey: DEPLOY_TOKEN
    cache:
      paths: [/root/.cache/go-build, vendor]
  - runScriptConfig:
      image: golang:1.22
      shellScript: go vet ./...
  - runScriptConfig:
      image: docker:dind
      shellScript: docker info
    privileged: true
    cpuLimit: 500m
    memoryLimit: 256Mi
- name: Release
  when:
    branch:
      include: [main]
  steps:
  - publishImageConfig:
      tag: app:${CICD_GIT_COMMIT}
timeout: 15
"""


def make_spec(text: str = PIPELINE, *, execution: str = "p-abcde-7", branch: str = "main", event: str = "push",
              nodes: tuple[str, ...] = (), **kw) -> RunSpec:
    result = load(text)
    assert result.config is not None, result.problems
    values = dict(execution=execution, project_id="p-abcde", pipeline_id="p-abcde:pl-1", run=7,
                  repository_url="https://git.example/app.git", commit="0" * 40, branch=branch,
                  ref=f"refs/heads/{branch}", event=event, trigger_type="push", config=result.config,
                  env={"CICD_GIT_COMMIT": "0" * 40, "CICD_GIT_BRANCH": branch,
                       "CICD_GIT_MESSAGE": "fix: it's `$(rm -rf /)` ''' \\ \"quoted\""},
                  secrets={"deploy-keys": {"TOKEN": "s3cr3t-deploy-token"}}, mask=("s3cr3t-deploy-token",),
                  scheduled_nodes=nodes)
    values.update(kw)
    return RunSpec(**values)


@pytest.fixture
def fake():
    with FakeJenkins() as f:
        yield f


@pytest.fixture
def engine(fake, tmp_path):
    options = JenkinsOptions(url=fake.url, user=fake.user, token=fake.token, log_store_url=f"file://{tmp_path}/logs")
    return JenkinsEngine(options, store=FileLogStore(tmp_path / "logs"))


@pytest.fixture
def client(fake):
    return JenkinsClient(fake.url, fake.user, fake.token)
