"""The shell scripts the Jenkinsfile gives deploy and publish steps, run for real with /bin/sh.

No Jenkins, kubectl or kaniko runs here; the scripts are plain POSIX shell and awk, so they
run on this machine with stand-ins for `kubectl` / the kaniko executor that record what they
were given. The environment is what the agent pod's container gets (its `env`) plus the build
parameters (Jenkins hands them to every `sh` as environment variables).
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from devops.engines.jenkins.jenkinsfile import build_parameters, build_plan
from devops.engines.jenkins.options import JenkinsOptions
from tests.engines.jenkins.conftest import make_spec

OPTIONS = JenkinsOptions()

PIPELINE = """\
stages:
- name: Publish
  steps:
  - publishImageConfig:
      dockerfilePath: ./Dockerfile
      buildContext: .
      tag: team/app:${CICD_GIT_COMMIT},latest
      pushRemote: true
      registry: registry.example.com
- name: Deploy
  steps:
  - applyYamlConfig:
      path: ./deploy/web.yaml
  - applyYamlConfig:
      content: |
        image: ${CICD_IMAGE}
        branch: ${CICD_GIT_BRANCH}
        unknown: ${CICD_NOT_SET} ${OTHER}
"""

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {commit: "${CICD_GIT_COMMIT}"}}
spec:
  template:
    spec:
      containers: [{name: web, image: "${CICD_IMAGE}"}]
"""


def _container_env(pod: dict, name: str) -> dict[str, str]:
    container = next(c for c in pod["spec"]["containers"] if c["name"] == name)
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def _run(script: str, env: dict[str, str], cwd: Path, bin_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/sh", "-c", script], cwd=cwd, capture_output=True, text=True,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin", **env}, timeout=30)


def _plan(branch: str = "feature/x$(touch /tmp/pwned)"):
    spec = make_spec(PIPELINE, branch=branch, commit="c0ffee",
                     env={"CICD_GIT_COMMIT": "c0ffee", "CICD_GIT_BRANCH": branch})
    pod, steps, _cfg = build_plan(spec, OPTIONS)
    return spec, pod, steps


def test_apply_yaml_substitutes_cicd_values_and_the_published_image_at_run_time(tmp_path):
    spec, pod, steps = _plan()
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "web.yaml").write_text(MANIFEST)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$OUT.args"\n'
                                     'while [ $# -gt 0 ]; do [ "$1" = -f ] && cat "$2" > "$OUT"; shift; done\n')
    (bin_dir / "kubectl").chmod(0o755)
    for (i, j), expect in {
        (2, 0): ['labels: {commit: "c0ffee"}', 'image: "registry.example.com/team/app:c0ffee"'],
        (2, 1): ["image: registry.example.com/team/app:c0ffee", f"branch: {spec.branch}",
                 "unknown: ${CICD_NOT_SET} ${OTHER}"],
    }.items():
        container, script = steps[(i, j)]
        env = {**build_parameters(spec), **_container_env(pod, container), "OUT": str(tmp_path / f"out-{j}")}
        done = _run(script, env, tmp_path, bin_dir)
        assert done.returncode == 0, done.stderr
        applied = (tmp_path / f"out-{j}").read_text()
        for line in expect:
            assert line in applied, applied
        args = (tmp_path / f"out-{j}.args").read_text().split("\n")
        assert args[:3] == ["apply", "--server-side", "--field-manager=slipway"]
    assert not Path("/tmp/pwned").exists()   # the branch name stayed a value


def test_the_published_image_is_that_of_an_earlier_stage():
    _spec, pod, steps = _plan()
    env = _container_env(pod, steps[(2, 0)][0])
    assert env["CICD_IMAGE"] == "registry.example.com/team/app:c0ffee"
    assert env["CICD_REGISTRY"] == "registry.example.com"
    assert env["CICD_IMAGE_REPO"] == "registry.example.com/team/app"


def test_publish_pushes_every_tag_each_as_one_argument(tmp_path):
    spec, pod, steps = _plan()
    container, script = steps[(1, 0)]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    executor = bin_dir / "executor"
    executor.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$OUT"\n')
    executor.chmod(0o755)
    env = {**build_parameters(spec), **_container_env(pod, container), "OUT": str(tmp_path / "argv")}
    done = _run(script.replace("/kaniko/executor", str(executor)), env, tmp_path, bin_dir)
    assert done.returncode == 0, done.stderr
    argv = (tmp_path / "argv").read_text().splitlines()
    assert argv == ["--dockerfile=./Dockerfile", f"--context=dir://{os.path.realpath(tmp_path)}/.",
                    "--destination=registry.example.com/team/app:c0ffee",
                    "--destination=registry.example.com/team/app:latest"]


CATALOG = """\
stages:
- name: Catalog
  steps:
  - publishCatalogConfig:
      path: chart
      catalogTemplate: app
      gitUrl: URL
      gitBranch: main
      gitAuthor: Release Bot
      gitEmail: bot@example.com
"""


def test_publish_catalog_pushes_with_the_bound_git_credential_to_a_real_git_server(tmp_path):
    """The catalog step's script, with the environment withCredentials(usernamePassword(...)) gives it,
    clones and `git push`es to a loopback smart-HTTP Git server that wants exactly that credential."""
    from devops.engines.base import GitAuth
    from devops.engines.jenkins.jenkinsfile import render
    from tests.engines.conftest import GIT_ENV, git
    from tests.gitserver import basic, git_http_server

    seed, root = tmp_path / "seed", tmp_path / "srv"
    seed.mkdir()
    root.mkdir()
    git(seed, "init", "-q", "-b", "main")
    (seed / "templates").mkdir()
    (seed / "templates" / "README").write_text("catalog\n")
    git(seed, "add", ".")
    git(seed, "commit", "-q", "-m", "seed")
    subprocess.run(["git", "clone", "-q", "--bare", str(seed), str(root / "catalog.git")], check=True, env=GIT_ENV)
    git(root / "catalog.git", "config", "http.receivepack", "true")
    work = tmp_path / "workspace"
    (work / "chart").mkdir(parents=True)
    (work / "chart" / "Chart.yaml").write_text('apiVersion: v2\nname: app\nversion: "1.2.3"\n')
    with git_http_server(root, basic("ci", "s3cret-tok")) as server:
        spec = make_spec(CATALOG.replace("URL", f"{server.base_url}/catalog.git"),
                         git_auth=GitAuth(token="s3cret-tok", username="ci"))
        assert "withCredentials([usernamePassword(credentialsId: params.SLIPWAY_GIT_CREDENTIALS, " \
            "usernameVariable: 'SLIPWAY_GIT_USER', passwordVariable: 'SLIPWAY_GIT_TOKEN')])" in render(spec, OPTIONS)
        pod, steps, _cfg = build_plan(spec, OPTIONS)
        container, script = steps[(1, 0)]
        assert "s3cret-tok" not in script and "s3cret-tok" not in repr(pod)
        env = {**build_parameters(spec), **_container_env(pod, container), "HOME": str(tmp_path),
               "SLIPWAY_GIT_USER": "ci", "SLIPWAY_GIT_TOKEN": "s3cret-tok",   # what withCredentials binds
               "GIT_CONFIG_NOSYSTEM": "1"}
        done = _run(script, env, work, tmp_path)
        assert done.returncode == 0, done.stderr
        assert "published templates/app/1.2.3 to main" in done.stdout
        again = _run(script, env, work, tmp_path)       # the same chart: nothing to commit, still fine
        assert again.returncode == 0 and "already holds templates/app/1.2.3" in again.stdout
        wrong = _run(script, {**env, "SLIPWAY_GIT_TOKEN": "nope"}, work, tmp_path)
        assert wrong.returncode != 0
    assert "s3cret-tok" not in done.stdout + done.stderr
    shown = git(root / "catalog.git", "show", "main:templates/app/1.2.3/Chart.yaml")
    assert 'version: "1.2.3"' in shown
    assert git(root / "catalog.git", "log", "-1", "--format=%an <%ae>|%s", "main") == \
        f"Release Bot <bot@example.com>|Publish app 1.2.3 ({spec.execution})"
