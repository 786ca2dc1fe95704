"""publishImageConfig against real buildah + docker-registry: build, layer reuse, push, digest, pull."""
from __future__ import annotations

import subprocess

import pytest

from devops.engines.local.images import (
    buildah_storage_args,
    parse_build_args,
    registries_conf,
    registry_access,
    resolve_target,
    split_image_tag,
)
from devops.pipeline.config import PublishImageConfig
from tests.images_registry.conftest import BASE_IMAGE, make_ctx

DOCKERFILE = f"""FROM {BASE_IMAGE}
ARG GREETING=hello
RUN echo "$GREETING" > /greeting
COPY app.txt /app.txt
CMD ["cat", "/greeting"]
"""


@pytest.mark.parametrize("tag, expected", [
    ("app", ("", "app", ("latest",))),
    ("myorg/app:1", ("", "myorg/app", ("1",))),
    ("reg.example.com/org/app:2", ("reg.example.com", "org/app", ("2",))),
    ("127.0.0.1:5000/app:3", ("127.0.0.1:5000", "app", ("3",))),
    ("localhost/app", ("localhost", "app", ("latest",))),
    ("bjornadalno/api:1,1.7", ("", "bjornadalno/api", ("1", "1.7"))),
])
def test_split_image_tag(tag, expected):
    assert split_image_tag(tag) == expected


def test_resolve_target_rancher_rules():
    local = "127.0.0.1:5000"
    t = resolve_target(PublishImageConfig(tag="baike:v1", registry="127.0.0.1:34969"), local)
    assert t.builtin and t.refs == ["127.0.0.1:5000/baike:v1"]  # pushRemote false -> built-in
    t = resolve_target(PublishImageConfig(tag="devops/tenant:x", pushRemote=True,
                                          registry="registry.example.com"), local)
    assert not t.builtin and t.refs == ["registry.example.com/devops/tenant:x"]
    t = resolve_target(PublishImageConfig(tag="harbor.io/a/b:1", pushRemote=True), local)
    assert t.refs == ["harbor.io/a/b:1"]
    t = resolve_target(PublishImageConfig(tag="org/app", pushRemote=True, registry="index.docker.io"), local)
    assert t.refs == ["docker.io/org/app:latest"]


def test_build_args_and_registries_conf():
    assert parse_build_args("A=1, B=two words,C") == [("A", "1"), ("B", "two words"), ("C", "")]
    conf = registries_conf(["127.0.0.1:5000"], "mirror.example.com:5000")
    assert 'location = "127.0.0.1:5000"\ninsecure = true' in conf
    assert '[[registry.mirror]]\nlocation = "mirror.example.com:5000"' in conf


def _workspace(tmp_path, text="v1"):
    ws = tmp_path / "ws"
    if not ws.exists():
        ws.mkdir()
        (ws / "Dockerfile").write_text(DOCKERFILE)
        (ws / "app.txt").write_text(text)
    return ws


def _publish_ctx(tmp_path, data_dir, registry, tag, env=None):
    return make_ctx(
        data_dir=data_dir, workspace=_workspace(tmp_path), run_dir=tmp_path / "run",
        stages=[{"name": "Publish", "steps": [{"type": {"kind": "publishImageConfig", "tag": tag}}]}],
        env={"CICD_LOCAL_REGISTRY": registry.address, **(env or {})})


@pytest.mark.services
@pytest.mark.slow
def test_publish_push_digest_ls_and_run(tmp_path, image_data_dir, registry, capsys):
    from devops.engines.local.steps import publish_image
    from devops.registry.server import manifest_digest, tags

    # The tag names its project (`p-test/`): not prefixed twice.
    ctx = _publish_ctx(tmp_path, image_data_dir, registry, "p-test/app:1,latest",
                       env={"PLUGIN_BUILD_ARGS": "GREETING=built-by-slipway"})
    first = publish_image.run(ctx)
    log = ctx.log.text
    assert first.exit_code == 0, (first.message, log)
    assert first.image_digest.startswith("sha256:")
    assert f"pushed {registry.address}/p-test/app:1@{first.image_digest}" in log
    assert registry.password not in log
    # The registry itself reports the pushed tags, with the digest recorded on the step.
    assert tags(registry, "p-test/app") == ["1", "latest"]
    assert manifest_digest(registry, "p-test/app", "1") == first.image_digest

    # `python manage.py registry ls` shows it (the command reads the same data dir).
    from django.core.management import call_command
    from django.test import override_settings

    with override_settings(DATA_DIR=image_data_dir):
        call_command("registry", "ls")
        call_command("registry", "ls", "p-test/app")
    out = capsys.readouterr().out
    assert "p-test/app" in out and "latest" in out and first.image_digest[:19] in out

    # Rebuild with nothing changed: every layer reused (the whole build is); bud never runs.
    # (How much faster: `./slipway bench`, not a timing assertion on a shared machine.)
    ctx2 = _publish_ctx(tmp_path, image_data_dir, registry, "p-test/app:2",
                        env={"PLUGIN_BUILD_ARGS": "GREETING=built-by-slipway"})
    second = publish_image.run(ctx2)
    assert second.exit_code == 0, ctx2.log.text
    assert "build inputs unchanged" in ctx2.log.text and "every layer reused" in ctx2.log.text
    assert "buildah bud" not in ctx2.log.text.split("build inputs unchanged")[0]
    assert manifest_digest(registry, "p-test/app", "2") == second.image_digest

    # A changed COPY source: buildah runs, reusing the layers before the COPY.
    ctx3 = _publish_ctx(tmp_path, image_data_dir, registry, "p-test/app:3",
                        env={"PLUGIN_BUILD_ARGS": "GREETING=built-by-slipway"})
    (ctx3.workspace / "app.txt").write_text("v2")
    third = publish_image.run(ctx3)
    assert third.exit_code == 0, ctx3.log.text
    assert "2 of 4 build steps reused cached layers" in ctx3.log.text
    assert third.image_digest != first.image_digest

    # A later step runs in the image just built, pulled from the built-in
    # registry (local copy removed first) with the step's registries.conf + auth file.
    ref = f"{registry.address}/p-test/app:1"
    storage = buildah_storage_args(image_data_dir)
    subprocess.run(["buildah", *storage, "rmi", "-f", ref, f"{registry.address}/p-test/app:latest"],
                   capture_output=True)
    env = dict(registry_access(ctx2, name="pull-test"), PATH="/usr/bin:/bin")
    ctr = subprocess.run(["buildah", *storage, "from", "--pull-always", ref], env=env,
                         capture_output=True, text=True)
    assert ctr.returncode == 0, ctr.stderr
    name = ctr.stdout.strip().splitlines()[-1]
    try:
        out = subprocess.run(["buildah", *storage, "run", "--isolation", "chroot", name, "cat", "/greeting"],
                             env=env, capture_output=True, text=True)
        assert out.stdout.strip() == "built-by-slipway", out.stderr
    finally:
        subprocess.run(["buildah", *storage, "rm", name], capture_output=True)


def test_builtin_repository_puts_the_tag_in_the_runs_namespace():
    """As Rancher's per-project registries: the tag names the project's image, Slipway adds the namespace."""
    from devops.engines.local.images import builtin_repository

    assert builtin_repository("p-abcde", "p-abcde/", "myorg/app") == "p-abcde/myorg/app"
    assert builtin_repository("p-abcde", "p-abcde/", "app") == "p-abcde/app"
    assert builtin_repository("p-abcde", "p-abcde/", "p-abcde/app") == "p-abcde/app"   # not twice
    pr = "p-abcde/pr/p-xyzab-7/"
    assert builtin_repository("p-abcde", pr, "myorg/app") == "p-abcde/pr/p-xyzab-7/myorg/app"
    assert builtin_repository("p-abcde", pr, "p-abcde/app") == "p-abcde/pr/p-xyzab-7/app"
    # A repository merely named `pr` is the project's own.
    assert builtin_repository("p-abcde", "p-abcde/", "pr") == "p-abcde/pr"
    for tag, why in (("../p-bravo/app", "not a valid image name"), ("a//b", "not a valid image name"),
                     ("MyOrg/app", "not a valid image name"), ("p-bravo/app", "project p-bravo's images"),
                     ("pr/p-xyzab-7/app", "pull requests' runs")):
        with pytest.raises(ValueError, match=why):
            builtin_repository("p-abcde", "p-abcde/", tag)
    with pytest.raises(ValueError, match="project p-bravo's images"):
        builtin_repository("p-abcde", pr, "p-bravo/app")


@pytest.mark.services
def test_publish_of_a_name_that_escapes_fails_before_the_build(tmp_path, image_data_dir, registry):
    """The registry would refuse the push (test_tokens); the step says why before building."""
    from devops.engines.local.steps import publish_image

    for tag, why in (("p-bravo/app:1", "names project p-bravo's images"), ("myorg/../p-bravo/app:1", "not a valid image name")):
        ctx = _publish_ctx(tmp_path, image_data_dir, registry, tag)
        result = publish_image.run(ctx)
        assert result.exit_code == 1 and why in result.message, result.message
        assert "STEP 1" not in ctx.log.text  # nothing was built


@pytest.mark.services
def test_publish_fails_when_registry_not_running(tmp_path, image_data_dir):
    from devops.engines.local.steps import publish_image

    class Down:
        address = "127.0.0.1:9"

    ctx = _publish_ctx(tmp_path, tmp_path / "data", Down, "p-test/app:1")
    result = publish_image.run(ctx)
    assert result.exit_code != 0 and "not running" in result.message


def test_publish_fails_with_install_hint_without_docker_registry(tmp_path, monkeypatch):
    import shutil

    from devops.engines.local.steps import publish_image

    real = shutil.which
    monkeypatch.setattr(publish_image.shutil, "which",
                        lambda name: None if name == "docker-registry" else real(name) or "/usr/bin/" + name)

    class Down:
        address = "127.0.0.1:9"

    result = publish_image.run(_publish_ctx(tmp_path, tmp_path / "data", Down, "p-test/app:1"))
    assert result.exit_code == 1 and "apt-get install docker-registry" in result.message
