"""Whole pipeline through the local engine: publish to the built-in registry, then a step runs in it."""
from __future__ import annotations

import pytest

from tests.engines.conftest import (
    Repo,
    config,
    git,
    log_of,
    make_engine,
    make_spec,
    step_of,
    wait_done,
)
from tests.images_registry.conftest import run_auth
from tests.images_registry.test_publish import DOCKERFILE

pytestmark = [pytest.mark.services, pytest.mark.slow]


def test_publish_then_run_in_the_built_image(tmp_path, image_data_dir, registry):
    repo_path = tmp_path / "repo"
    repo_path.mkdir()
    git(repo_path, "init", "-q", "-b", "main")
    repo = Repo(repo_path, [])
    repo.commit("app.txt", "e2e\n")
    repo.commit("Dockerfile", DOCKERFILE)
    cfg = config([
        {"name": "Publish", "steps": [{"type": {"kind": "publishImageConfig",
                                                 "tag": "p-e2e/app:${CICD_EXECUTION_SEQUENCE}"},
                                       "env": [["PLUGIN_BUILD_ARGS", "GREETING=from-e2e"]]}]},
        {"name": "Use", "steps": [{"type": {"kind": "runScriptConfig",
                                            "image": "${CICD_LOCAL_REGISTRY}/p-e2e/app:7",
                                            "shellScript": "cat /greeting /app.txt; echo image=$CICD_IMAGE"}}]},
    ])
    auth = run_auth(image_data_dir, "p-e2e")  # the project's own credential, as controller/spec.py gives it
    password = auth[registry.address][1]
    spec = make_spec(repo, cfg, name="p-e2e-7", run=7, project_id="p-e2e", pipeline_id="p-e2e",
                     env={"CICD_EXECUTION_SEQUENCE": "7", "CICD_LOCAL_REGISTRY": registry.address},
                     registry_auth=auth, mask=(password,))
    engine = make_engine(image_data_dir, runtime="container")
    report = wait_done(engine, spec, engine.run(spec), timeout=90)
    publish_log = _log(image_data_dir, spec, 1, 0)
    assert report.state == "Success", (report, publish_log, _log(image_data_dir, spec, 2, 0))
    digest = step_of(report, 1, 0).image_digest
    assert digest.startswith("sha256:") and digest in publish_log
    assert password not in publish_log
    from devops.registry.server import manifest_digest

    assert manifest_digest(registry, "p-e2e/app", "7") == digest
    use_log = _log(image_data_dir, spec, 2, 0)
    assert "from-e2e" in use_log and "e2e" in use_log
    # Later steps see what the nearest earlier publish step pushed (DESIGN §3).
    assert f"image={registry.address}/p-e2e/app:7" in use_log

    # Another run, with the local copy gone: the container runtime pulls the
    # image from the built-in registry (insecure loopback + credentials).
    import subprocess

    from devops.engines.local.images import buildah_storage_args

    subprocess.run(["buildah", *buildah_storage_args(image_data_dir), "rmi", "-f",
                    f"{registry.address}/p-e2e/app:7"], capture_output=True, check=True)
    only_use = config([cfg.stages[2].model_dump(by_alias=True)])
    spec2 = make_spec(repo, only_use, name="p-e2e-8", run=8, project_id="p-e2e", pipeline_id="p-e2e",
                      env={"CICD_EXECUTION_SEQUENCE": "8", "CICD_LOCAL_REGISTRY": registry.address},
                      registry_auth=auth, mask=(password,))
    report2 = wait_done(engine, spec2, engine.run(spec2), timeout=60)
    assert report2.state == "Success", (report2, _log(image_data_dir, spec2, 1, 0))
    assert "from-e2e" in _log(image_data_dir, spec2, 1, 0)


def _log(data_dir, spec, stage, step):
    try:
        return log_of(data_dir, spec, stage, step)
    except Exception as e:  # the step never started
        return f"<no log: {e}>"
