"""Network optimisation: package-mirror env, Maven settings, and a registry mirror buildah really uses."""
from __future__ import annotations

import subprocess

import pytest

from devops.cache.mirrors import apply_mirrors, maven_settings_xml, mirror_env
from devops.engines.local.images import buildah_storage_args, registry_access
from tests.images_registry.conftest import BASE_IMAGE, make_ctx

SETTINGS = {
    "pip-index-url": "http://pypi.mirror.internal/simple",
    "npm-registry": "https://npm.mirror.internal/",
    "goproxy": "https://goproxy.internal,direct",
    "maven-mirror": "https://maven.mirror.internal/repo?a=1&b=2",
}


def test_mirror_env():
    env = mirror_env(SETTINGS)
    assert env == {
        "PIP_INDEX_URL": "http://pypi.mirror.internal/simple",
        "PIP_TRUSTED_HOST": "pypi.mirror.internal",
        "npm_config_registry": "https://npm.mirror.internal/",
        "GOPROXY": "https://goproxy.internal,direct",
    }
    assert mirror_env({}) == {}
    xml = maven_settings_xml(SETTINGS["maven-mirror"])
    assert "<mirrorOf>*</mirrorOf>" in xml and "a=1&amp;b=2" in xml


def test_apply_mirrors_to_a_step(tmp_path):
    ctx = make_ctx(data_dir=tmp_path, workspace=tmp_path / "ws", run_dir=tmp_path / "run",
                   stages=[{"name": "B", "steps": [{"type": {"kind": "runScriptConfig", "image": "x",
                                                             "shellScript": "true"},
                                                    "env": [["GOPROXY", "off"]]}]}],
                   settings=SETTINGS, env={"GOPROXY": "off"})
    applied = apply_mirrors(ctx)
    assert ctx.env["PIP_INDEX_URL"] == SETTINGS["pip-index-url"]
    assert ctx.env["npm_config_registry"] == SETTINGS["npm-registry"]
    assert ctx.env["GOPROXY"] == "off"  # the step's own value wins
    assert "GOPROXY" not in applied
    mount = ctx.mounts[-1]
    assert mount.target == "/etc/slipway/maven" and mount.read_only
    assert "maven.mirror.internal" in (mount.source / "settings.xml").read_text()
    assert ctx.env["MAVEN_ARGS"] == "--settings /etc/slipway/maven/settings.xml"
    assert "package mirrors:" in ctx.log.text


@pytest.fixture
def mirror(tmp_path):
    """A pull-through-cache stand-in: a real docker-registry without auth (as a team's mirror
    often is). Not the built-in one: no project may own `library/...` there."""
    import shutil
    import time

    import yaml

    from devops.registry.server import _free_port, answers
    from tests.conftest import require_tool

    require_tool("docker-registry")
    address = f"127.0.0.1:{_free_port()}"
    conf = tmp_path / "mirror.yml"
    conf.write_text(yaml.safe_dump({"version": 0.1, "http": {"addr": address},
                                    "storage": {"filesystem": {"rootdirectory": str(tmp_path / "mirror")}}}))
    proc = subprocess.Popen([shutil.which("docker-registry"), "serve", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 15  # a deadline for a registry that never comes up, not a speed check
        while not answers(address) and time.monotonic() < end:
            time.sleep(0.05)
        yield address
    finally:
        proc.terminate()
        proc.wait()


@pytest.mark.services
def test_registry_mirror_serves_docker_hub_names(tmp_path, image_data_dir, mirror):
    """`registry-mirror` = a registry holding library/<name>: `docker.io/library/<name>` comes from it."""
    storage = buildah_storage_args(image_data_dir)
    mirrored = f"{mirror}/library/mirrortest:1"
    ctx = make_ctx(data_dir=image_data_dir, workspace=tmp_path / "ws", run_dir=tmp_path / "run",
                   stages=[{"name": "B", "steps": [{"type": {"kind": "runScriptConfig", "image": "x"}}]}],
                   settings={"registry-mirror": mirror}, registry_auth={})
    env = dict(registry_access(ctx), PATH="/usr/bin:/bin")
    subprocess.run(["buildah", *storage, "tag", BASE_IMAGE, mirrored], check=True, capture_output=True)
    push = subprocess.run(["buildah", *storage, "push", "--tls-verify=false", mirrored], env=env,
                          capture_output=True, text=True)
    assert push.returncode == 0, push.stderr
    subprocess.run(["buildah", *storage, "rmi", mirrored], capture_output=True)
    # No internet here: the pull can only succeed through the mirror.
    pulled = subprocess.run(["buildah", *storage, "pull", "docker.io/library/mirrortest:1"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert pulled.returncode == 0, pulled.stderr
    subprocess.run(["buildah", *storage, "rmi", "docker.io/library/mirrortest:1"], capture_output=True)
