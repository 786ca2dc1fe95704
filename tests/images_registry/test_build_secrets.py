"""Build args from secrets reach the build through `--secret`, never argv or image history (issue 8, point 5).

A real build with buildah 1.28 and a real push to the built-in registry:
the value of a `BUILD_ARG_*` set by envFrom reaches `RUN --mount=type=secret`
(the image holds its sha256, proving it was readable), while `buildah
inspect` of the image and the manifest, config and layer blobs the registry
serves contain no byte of it. A plain build arg stays a build arg (in history).
"""
from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from devops.engines.local.images import buildah_storage_args
from devops.engines.local.steps.publish_image import build_args
from tests.images_registry.conftest import BASE_IMAGE, make_ctx

SECRET = "PLANTED-npm-token-4f2e9a"
DOCKERFILE = f"""FROM {BASE_IMAGE}
ARG GREETING
RUN --mount=type=secret,id=NPM_TOKEN sha256sum /run/secrets/NPM_TOKEN | cut -d' ' -f1 > /token.sha256
RUN echo "$GREETING" > /greeting
"""


def test_secret_build_args_are_told_apart():
    env = {"BUILD_ARG_NPM_TOKEN": "t0k", "BUILD_ARG_MODE": "release", "BUILD_ARG_PW": "reg-pw",
           "PLUGIN_BUILD_ARGS": "A=1"}
    plain, secret = build_args(env, frozenset({"BUILD_ARG_NPM_TOKEN"}), frozenset({"reg-pw"}))
    assert plain == [("A", "1"), ("MODE", "release")]
    assert secret == [("NPM_TOKEN", "t0k"), ("PW", "reg-pw")]
    plain, secret = build_args({"PLUGIN_BUILD_ARGS": "X=1,Y=2"}, frozenset({"PLUGIN_BUILD_ARGS"}))
    assert plain == [] and secret == [("X", "1"), ("Y", "2")]


def _fetch(registry, path: str, accept: str = "") -> bytes:
    from devops.registry.tokens import Scope, internal_token

    req = urllib.request.Request(registry.url + path)
    repo = path.removeprefix("/v2/").split("/manifests/")[0].split("/blobs/")[0]
    token = internal_token(Path(registry.directory), [Scope("repository", repo, ("pull",))])
    req.add_header("Authorization", f"Bearer {token}")
    if accept:
        req.add_header("Accept", accept)
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read()


class ArgvWatch(threading.Thread):
    """Reads every process's /proc/*/cmdline while the build runs (the host's view of argv)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.seen: set[bytes] = set()
        self.scans = 0

    def run(self) -> None:
        while not self.stop.is_set():
            for p in Path("/proc").iterdir():
                if p.name.isdigit():
                    try:
                        self.seen.add((p / "cmdline").read_bytes())
                    except OSError:
                        pass
            self.scans += 1


@pytest.mark.services
@pytest.mark.slow
def test_secret_build_arg_never_lands_in_argv_history_or_the_registry(tmp_path, image_data_dir, registry):
    from devops.engines.local.steps import publish_image

    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "Dockerfile").write_text(DOCKERFILE)
    tag = f"p-test/secret-args:{int(time.time() * 1000)}"
    ctx = make_ctx(
        data_dir=image_data_dir, workspace=ws, run_dir=tmp_path / "run",
        stages=[{"name": "Publish", "steps": [{
            "type": {"kind": "publishImageConfig", "tag": tag},
            "envFrom": [{"sourceName": "npm", "sourceKey": "token", "targetKey": "BUILD_ARG_NPM_TOKEN"}]}]}],
        env={"CICD_LOCAL_REGISTRY": registry.address, "BUILD_ARG_NPM_TOKEN": SECRET,
             "PLUGIN_BUILD_ARGS": "GREETING=hello-plain", "SLIPWAY_BUILD_REUSE": "false"})
    watch = ArgvWatch()
    watch.start()
    try:
        result = publish_image.run(ctx)
    finally:
        watch.stop.set()
        watch.join()
    log = ctx.log.text
    assert result.exit_code == 0, (result.message, log)
    assert watch.scans > 0 and not any(SECRET.encode() in argv for argv in watch.seen)
    assert any(b"--secret" in argv for argv in watch.seen)  # the watch did see the build's argv
    assert "NPM_TOKEN" in log and SECRET not in log
    # The secret file is gone with the build.
    assert not list((tmp_path / "run").rglob("secrets-*")), list((tmp_path / "run").rglob("*"))

    ref = f"{registry.address}/{tag}"
    storage = buildah_storage_args(image_data_dir)
    inspect = subprocess.run(["buildah", *storage, "inspect", "--type", "image", ref],
                             capture_output=True, text=True, check=True).stdout
    assert SECRET not in inspect
    assert "GREETING=hello-plain" in inspect  # decided: plain build args stay build args (in history)

    # What the registry serves: manifest, config blob, every layer (decompressed).
    repo, _, ref_tag = tag.partition(":")
    manifest_raw = _fetch(registry, f"/v2/{repo}/manifests/{ref_tag}",
                          "application/vnd.oci.image.manifest.v1+json, "
                          "application/vnd.docker.distribution.manifest.v2+json")
    manifest = json.loads(manifest_raw)
    config_raw = _fetch(registry, f"/v2/{repo}/blobs/{manifest['config']['digest']}")
    blobs = [manifest_raw, config_raw]
    token_sha = None
    for layer in manifest["layers"]:
        data = _fetch(registry, f"/v2/{repo}/blobs/{layer['digest']}")
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        blobs.append(data)
        if b"token.sha256" in data:
            token_sha = data
    for blob in blobs:
        assert SECRET.encode() not in blob
    assert b"--mount=type=secret,id=NPM_TOKEN" in config_raw  # the history shows the mount, not the value
    # The build really read the secret: the layer holds its hash.
    assert token_sha is not None and hashlib.sha256(SECRET.encode()).hexdigest().encode() in token_sha


@pytest.mark.services
@pytest.mark.slow
def test_a_pull_request_build_neither_uses_nor_leaves_cached_layers(tmp_path, image_data_dir, registry):
    from devops.engines.local.images import fingerprint_file  # noqa: F401  (where fingerprints live)
    from devops.engines.local.steps import publish_image

    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nRUN echo pr-layer-{time.time_ns()} > /f\n")
    fingerprints = image_data_dir / "containers" / "fingerprints"

    from devops.registry.server import tags

    def publish(event: str, n: int):
        ctx = make_ctx(data_dir=image_data_dir, workspace=ws, run_dir=tmp_path / f"run{n}",
                       stages=[{"name": "P", "steps": [{"type": {"kind": "publishImageConfig",
                                                                  "tag": f"p-test/pr-layers:{n}"}}]}],
                       env={"CICD_LOCAL_REGISTRY": registry.address}, event=event)
        return publish_image.run(ctx), ctx.log.text

    before = set(fingerprints.glob("*")) if fingerprints.exists() else set()
    result, log = publish("pull_request", 1)
    assert result.exit_code == 0, log
    assert "without the layer cache" in log and "Using cache" not in log
    # Pushed only into the run's own namespace (test_tokens proves the registry's side), never the project's.
    assert f"pushing {registry.address}/p-test/pr/p-test-1/pr-layers:1" in log
    assert tags(registry, "p-test/pr/p-test-1/pr-layers") == ["1"]
    assert "1" not in tags(registry, "p-test/pr-layers")
    assert "removed from local storage" in log
    assert (set(fingerprints.glob("*")) if fingerprints.exists() else set()) == before  # no reuse record
    # A trusted build of the same Dockerfile finds nothing the pull request left: it builds the RUN itself.
    result, log = publish("push", 2)
    assert result.exit_code == 0, log
    assert "0 of 1 build steps reused cached layers" in log, log
