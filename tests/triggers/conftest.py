"""Trigger fixtures: a data dir, a repository whose commits carry the recorded payloads' ids.

The recorded payloads name commits of repositories we do not have. Each
fixture commit id is made to exist with `git replace` (refs/replace/<id> ->
a local commit holding the pipeline file): the mirror fetches refs/*, so
`do_run` resolves the payload's exact commit id and reads the pipeline file
from it, and the payload bytes stay untouched.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tests.controller import conftest as controller_fixtures
from tests.controller.conftest import git, make_repo

HOOKS = FIXTURES / "webhooks"
data_dir = controller_fixtures.data_dir  # the controller tests' DATA_DIR fixture, shared
SECRET = "It's a Secret to Everybody"   # GitHub's documented test secret (SOURCES.md test vectors)

PIPELINE_YAML = """\
stages:
- name: Build
  steps:
  - runScriptConfig:
      image: busybox
      shellScript: echo hello
"""


def fixture_bytes(name: str) -> bytes:
    path = HOOKS / name
    if not path.is_file():
        pytest.fail(f"webhook fixture missing: {path}", pytrace=False)
    return path.read_bytes()


def sha256_hex(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def commits_named(body: bytes) -> set[str]:
    """Every 40-hex string in a payload (the commit ids a receiver may pass to do_run)."""
    found: set[str] = set()

    def walk(v):
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, str) and len(v) == 40 and all(c in "0123456789abcdef" for c in v) and v != "0" * 40:
            found.add(v)

    walk(json.loads(body))
    return found



def make_hook_repo(path: Path, *, yaml: str = PIPELINE_YAML, commits: set[str] = frozenset(),
                   branch: str = "master") -> str:
    """A repository with the pipeline file; each id in `commits` replaced by its one commit."""
    head = make_repo(path, {".devops.yml": yaml, "README": "hi\n"}, branch=branch)
    for sha in commits:
        git(path, "update-ref", f"refs/replace/{sha}", head)
    return head


@pytest.fixture
def hook_pipeline(project, data_dir, tmp_path):
    """make(fixture_names..., yaml=..., **pipeline fields) -> a Pipeline with webhook secret SECRET."""
    from devops.models import Pipeline

    def make(*fixtures: str, yaml: str = PIPELINE_YAML, **fields):
        shas: set[str] = set()
        for name in fixtures:
            shas |= commits_named(fixture_bytes(name))
        repo = tmp_path / f"repo-{len(list(tmp_path.glob('repo-*')))}"
        make_hook_repo(repo, yaml=yaml, commits=shas)
        values = {"trigger_webhook_push": True, "trigger_webhook_tag": True, "trigger_webhook_pr": True,
                  "webhook_token": SECRET}
        values.update(fields)
        return Pipeline.objects.create(project=project, repository_url=str(repo), default_branch="master",
                                       **values)

    return make
