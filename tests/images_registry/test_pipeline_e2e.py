"""Whole pipelines through the local engine: a Rancher file publishes to the built-in registry, then a
step runs in the image it built — in two projects (each its own image) and in a pull request's run
(its own namespace, the project's image untouched). Real git, buildah, docker-registry, token auth."""
from __future__ import annotations

import os
import subprocess

import pytest

from tests.engines.conftest import Repo, git, log_of, make_engine, make_spec, step_of, wait_done
from tests.images_registry.conftest import run_auth
from tests.images_registry.test_publish import DOCKERFILE

pytestmark = [pytest.mark.services, pytest.mark.slow]

# A Rancher v2 file as users wrote them (DESIGN §3 example): the tag names no project, the
# later step names the image through ${CICD_LOCAL_REGISTRY}. It must run unchanged.
RANCHER_FILE = """\
stages:
- name: Publish
  steps:
  - publishImageConfig:
      dockerfilePath: ./Dockerfile
      buildContext: .
      tag: myorg/app:${CICD_EXECUTION_SEQUENCE}
      pushRemote: false
    env:
      PLUGIN_BUILD_ARGS: GREETING=${CICD_PROJECT_ID}-${CICD_EVENT}
- name: Use
  steps:
  - runScriptConfig:
      image: ${CICD_LOCAL_REGISTRY}/myorg/app:${CICD_EXECUTION_SEQUENCE}
      shellScript: cat /greeting /app.txt; echo "image=$CICD_IMAGE repo=$CICD_IMAGE_REPO registry=$CICD_REGISTRY"
"""
# A pull request's file may also run in an image the project built elsewhere (trusted runs only).
PR_FILE = RANCHER_FILE + """\
  - runScriptConfig:
      image: ${CICD_LOCAL_REGISTRY}/myorg/base:1
      shellScript: echo base-from-the-project
"""
A, B = "p-e2eaa", "p-e2ebb"   # project ids as Slipway makes them (`p-` + 5)


def _repo(tmp_path) -> Repo:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    repo = Repo(path, [])
    repo.commit("app.txt", "e2e\n")
    repo.commit("Dockerfile", DOCKERFILE)
    repo.commit(".rancher-pipeline.yml", RANCHER_FILE)
    return repo


def _spec(repo, data_dir, registry, project: str, run: int, *, event: str = "push", pipeline: str = "",
          text: str = ""):
    """What controller/spec.py makes: CICD_* with CICD_LOCAL_REGISTRY = address + the run's namespace,
    the project's own credential (a pull request's run: its per-run one)."""
    from devops.pipeline import load
    from devops.registry.tokens import local_registry_value

    result = load(text or (repo.path / ".rancher-pipeline.yml").read_text())
    assert result.config is not None, result.problems
    pipeline = pipeline or project
    name = f"{pipeline}-{run}-{os.getpid()}"   # make_spec's execution name
    trusted = event != "pull_request"
    auth = run_auth(data_dir, project, trusted=trusted, execution=name)
    password = auth[registry.address][1]
    env = {"CICD_EXECUTION_SEQUENCE": str(run), "CICD_PROJECT_ID": project, "CICD_EVENT": event,
           "CICD_LOCAL_REGISTRY": local_registry_value(registry.address, project, name, trusted=trusted)}
    spec = make_spec(repo, result.config, name=f"{pipeline}-{run}", run=run, project_id=project,
                     pipeline_id=pipeline, event=event, env=env, registry_auth=auth, mask=(password,))
    assert spec.execution == name
    return spec, password


def _log(data_dir, spec, stage, step):
    try:
        return log_of(data_dir, spec, stage, step)
    except Exception as e:  # the step never started
        return f"<no log: {e}>"


def _run(engine, data_dir, spec):
    report = wait_done(engine, spec, engine.run(spec), timeout=120)
    publish, use = _log(data_dir, spec, 1, 0), _log(data_dir, spec, 2, 0)
    assert report.state == "Success", (report, publish, use)
    return report, publish, use


def test_a_rancher_file_runs_unchanged_in_two_projects_each_with_its_own_image(tmp_path, image_data_dir,
                                                                                registry):
    from devops.engines.local.images import buildah_storage_args
    from devops.registry.server import manifest_digest, tags

    repo = _repo(tmp_path)
    engine = make_engine(image_data_dir, runtime="container")
    digests = {}
    for project in (A, B):
        spec, password = _spec(repo, image_data_dir, registry, project, 7)
        report, publish, use = _run(engine, image_data_dir, spec)
        assert password not in publish
        # Pushed under the project's namespace, which the file never wrote.
        ref = f"{registry.address}/{project}/myorg/app:7"
        digest = step_of(report, 1, 0).image_digest
        assert f"pushed {ref}@{digest}" in publish
        assert manifest_digest(registry, f"{project}/myorg/app", "7") == digest
        digests[project] = digest
        # The later step ran in this project's image (its own build arg), named as Rancher named it.
        assert f"image: {ref}" in use and f"{project}-push" in use and "e2e" in use
        # Rancher's kube-apply values: CICD_IMAGE = $CICD_REGISTRY/$CICD_IMAGE_REPO, no tag.
        assert (f"image={registry.address}/{project}/myorg/app repo=myorg/app "
                f"registry={registry.address}/{project}") in use
    assert digests[A] != digests[B]
    assert tags(registry, "myorg/app") == []   # nothing outside the projects' namespaces

    # Another run of A with the local copy gone: the container runtime pulls A's image from the
    # registry (the bare address in registries.conf and the auth file, the namespaced name).
    subprocess.run(["buildah", *buildah_storage_args(image_data_dir), "rmi", "-f",
                    f"{registry.address}/{A}/myorg/app:7"], capture_output=True, check=True)
    spec, _ = _spec(repo, image_data_dir, registry, A, 7)
    use_only = spec.config.model_copy(update={"stages": (spec.config.stages[0], spec.config.stages[2])})
    from dataclasses import replace

    spec = replace(spec, config=use_only, execution=spec.execution + "-again")
    report = wait_done(engine, spec, engine.run(spec), timeout=60)
    assert report.state == "Success", (report, _log(image_data_dir, spec, 1, 0))
    assert f"{A}-push" in _log(image_data_dir, spec, 1, 0)


def test_a_pull_request_run_uses_its_own_image_and_cannot_touch_the_projects(tmp_path, image_data_dir,
                                                                            registry):
    from devops.engines.local.images import buildah_storage_args
    from devops.registry.server import manifest_digest, tags

    repo = _repo(tmp_path)
    engine = make_engine(image_data_dir, runtime="container")
    trusted, _ = _spec(repo, image_data_dir, registry, A, 9)
    report, _, _ = _run(engine, image_data_dir, trusted)
    trusted_digest = step_of(report, 1, 0).image_digest
    assert manifest_digest(registry, f"{A}/myorg/app", "9") == trusted_digest

    # The same file, the same tag (myorg/app:9), from a pull request.
    # An image of the project no pull request built (as another trusted pipeline would push it).
    from tests.images_registry.test_tokens import _buildah

    base = f"{registry.address}/{A}/myorg/base:1"
    pushed = _buildah(image_data_dir, tmp_path, run_auth(image_data_dir, A), "push", "localhost/busybox:latest",
                      f"docker://{base}")
    assert pushed.returncode == 0, pushed.stderr
    pr, password = _spec(repo, image_data_dir, registry, A, 9, event="pull_request", pipeline="p-e2epl",
                         text=PR_FILE)
    pr_ns = f"{A}/pr/{pr.execution}"
    report, publish, use = _run(engine, image_data_dir, pr)
    assert password not in publish and "without the layer cache" in publish
    pr_ref = f"{registry.address}/{pr_ns}/myorg/app:9"
    assert f"pushed {pr_ref}@" in publish
    pr_digest = step_of(report, 1, 0).image_digest
    assert manifest_digest(registry, f"{pr_ns}/myorg/app", "9") == pr_digest != trusted_digest
    # Its later step ran in the image it built (pulled back from its namespace: the publish step
    # removed the local copy), and saw where it lives.
    assert f"image: {pr_ref}" in use and f"{A}-pull_request" in use
    assert f"image={registry.address}/{pr_ns}/myorg/app repo=myorg/app" in use
    # ${CICD_LOCAL_REGISTRY}/myorg/base:1 is not in its namespace: the project's image, pulled.
    other = _log(image_data_dir, pr, 2, 1)
    assert step_of(report, 2, 1).state == "Success", other
    assert f"using the project's {base}" in other and "base-from-the-project" in other
    # The project's image is what the trusted run pushed; nothing of the pull request is local.
    assert manifest_digest(registry, f"{A}/myorg/app", "9") == trusted_digest
    assert tags(registry, f"{pr_ns}/myorg/app") == ["9"]
    listed = subprocess.run(["buildah", *buildah_storage_args(image_data_dir), "images", "--format",
                             "{{.Name}}"], capture_output=True, text=True, check=True).stdout
    assert f"{A}/pr/" not in listed, listed
