"""The built-in registry against the real docker-registry: start, auth, restart, `registry ls`."""
from __future__ import annotations

import base64
import urllib.error
import urllib.request

import pytest

from tests.conftest import require_tool

pytestmark = pytest.mark.services


def _status(url: str, auth: tuple[str, str] | None = None) -> int:
    """GET's status; `auth` is (username, password) for Basic or ("Bearer", token)."""
    req = urllib.request.Request(url)
    if auth and auth[0] == "Bearer":
        req.add_header("Authorization", f"Bearer {auth[1]}")
    elif auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def _bearer(info, repo: str, actions=("pull", "push")) -> tuple[str, str]:
    from pathlib import Path

    from devops.registry.tokens import Scope, claims_for, sign

    # Slipway's own signer, with push (which the internal account never gets): a test of storage only.
    claims = claims_for("test", [Scope("repository", repo, tuple(actions))])
    return "Bearer", sign(Path(info.directory), claims)


def test_start_auth_restart_persistence(tmp_path):
    require_tool("docker-registry")
    import yaml

    from devops.registry.server import (
        _pid_of,
        ensure_registry,
        registry_dir,
        registry_info,
        stop_registry,
    )

    info = ensure_registry(tmp_path, notify_url="", token_realm="http://127.0.0.1:9/api/v1/registry/token")
    try:
        assert info.address.startswith("127.0.0.1:")
        assert len(info.password) >= 24 and info.username == "slipway+internal"
        # Token auth: anonymous and Basic requests are refused and sent to the token endpoint.
        assert _status(info.url + "/v2/") == 401
        assert _status(info.url + "/v2/", (info.username, info.password)) == 401
        config = yaml.safe_load((registry_dir(tmp_path) / "config.yml").read_text())
        assert config["auth"] == {"token": {
            "realm": "http://127.0.0.1:9/api/v1/registry/token", "service": "slipway-registry",
            "issuer": "slipway", "rootcertbundle": str(registry_dir(tmp_path) / "token-cert.pem")}}
        rdir = registry_dir(tmp_path)
        for name in ("state.json", "token-key.pem", "token-cert.pem"):
            assert (rdir / name).stat().st_mode & 0o777 == 0o600, name
        assert not (rdir / "htpasswd").exists()
        key = (rdir / "token-key.pem").read_bytes()
        # Idempotent: a second call reuses the running process.
        pid = _pid_of(registry_dir(tmp_path))
        assert ensure_registry(tmp_path, notify_url="", token_realm="http://127.0.0.1:9/api/v1/registry/token") == info
        assert _pid_of(registry_dir(tmp_path)) == pid
        # Push a blob through the API, restart, and it is still there.
        upload = _upload_blob(info, "keep/me", b"survives restarts")
        assert stop_registry(tmp_path)
        from devops.registry.server import answers

        assert not answers(info.address)
        again = ensure_registry(tmp_path, notify_url="", token_realm="http://127.0.0.1:9/api/v1/registry/token")
        assert again == info == registry_info(tmp_path)  # same address and password after restart
        assert (rdir / "token-key.pem").read_bytes() == key  # and the same signing key
        assert _status(f"{info.url}/v2/keep/me/blobs/{upload}", _bearer(info, "keep/me", ["pull"])) == 200
    finally:
        stop_registry(tmp_path)


def _upload_blob(info, repo: str, data: bytes) -> str:
    import hashlib

    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    auth = " ".join(_bearer(info, repo))
    req = urllib.request.Request(f"{info.url}/v2/{repo}/blobs/uploads/", method="POST",
                                 headers={"Authorization": auth})
    with urllib.request.urlopen(req, timeout=5) as r:
        location = r.headers["Location"]
    sep = "&" if "?" in location else "?"
    url = location if location.startswith("http") else info.url + location
    req = urllib.request.Request(f"{url}{sep}digest={digest}", data=data, method="PUT",
                                 headers={"Authorization": auth, "Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 201
    return digest


def test_notifications_configured_with_token(tmp_path):
    require_tool("docker-registry")
    import yaml

    from devops.registry.server import (
        ensure_registry,
        notification_token,
        registry_dir,
        stop_registry,
    )

    try:
        ensure_registry(tmp_path, notify_url="http://127.0.0.1:9/api/v1/registry/notifications")
        config = yaml.safe_load((registry_dir(tmp_path) / "config.yml").read_text())
        endpoint = config["notifications"]["endpoints"][0]
        assert endpoint["url"].endswith("/api/v1/registry/notifications")
        assert endpoint["headers"]["Authorization"] == [f"Bearer {notification_token(tmp_path)}"]
        assert config["storage"]["filesystem"]["rootdirectory"] == str(registry_dir(tmp_path) / "storage")
        assert config["http"]["addr"].startswith("127.0.0.1:")
    finally:
        stop_registry(tmp_path)


def test_not_installed_message(tmp_path, monkeypatch):
    from devops.registry import server as reg

    # Only the PATH lookup is replaced: this machine has docker-registry.
    monkeypatch.setattr(reg.shutil, "which", lambda name: None)
    with pytest.raises(reg.RegistryNotInstalled, match="apt-get install docker-registry"):
        reg.ensure_registry(tmp_path, notify_url="")


def test_registry_dies_with_the_process_that_started_it(tmp_path):
    """kill -9 of the starter (a controller) never leaves a registry behind."""
    require_tool("docker-registry")
    import os
    import signal
    import subprocess
    import sys
    import time

    from devops.registry.server import _pid_of, answers, registry_dir, registry_info

    code = ("import sys, time; from devops.registry.server import ensure_registry; "
            f"ensure_registry({str(tmp_path)!r}, notify_url=''); print('up', flush=True); time.sleep(60)")
    starter = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "DJANGO_SETTINGS_MODULE": ""})
    try:
        assert starter.stdout.readline().strip() == "up"
        pid = _pid_of(registry_dir(tmp_path))
        assert pid and answers(registry_info(tmp_path).address)
    finally:
        starter.send_signal(signal.SIGKILL)
        starter.wait()
    end = time.monotonic() + 10
    while time.monotonic() < end and _pid_of(registry_dir(tmp_path)) is not None:
        time.sleep(0.05)
    assert _pid_of(registry_dir(tmp_path)) is None


@pytest.mark.slow
def test_real_registry_notifies_slipway_of_a_push(tmp_path, live_server, settings, image_data_dir):
    """docker-registry -> POST /api/v1/registry/notifications (bearer token) -> recorded push."""
    require_tool("docker-registry")
    require_tool("buildah")
    import subprocess
    import time

    from devops.engines.local.images import auth_json, buildah_storage_args
    from devops.registry.server import ensure_registry, manifest_digest, project_auth, stop_registry
    from devops.registry.tokens import TOKEN_PATH
    from devops.triggers.registry_events import recent_pushes
    from tests.images_registry.conftest import BASE_IMAGE

    settings.DATA_DIR = tmp_path
    info = ensure_registry(tmp_path, notify_url=live_server.url + "/api/v1/registry/notifications",
                           token_realm=live_server.url + TOKEN_PATH)
    try:
        auth = tmp_path / "auth.json"
        auth.write_text(auth_json({info.address: project_auth(tmp_path, "p-notify", trusted=True)}))
        ref = f"{info.address}/p-notify/me:5"
        storage = buildah_storage_args(image_data_dir)
        pushed = subprocess.run(["buildah", *storage, "push", "--tls-verify=false", "--authfile", str(auth),
                                 BASE_IMAGE, f"docker://{ref}"], capture_output=True, text=True, check=False)
        assert pushed.returncode == 0, pushed.stderr
        end = time.monotonic() + 15
        while time.monotonic() < end and not recent_pushes():
            time.sleep(0.1)
        push = recent_pushes()[0]
        assert (push["repository"], push["tag"]) == ("p-notify/me", "5")
        assert push["digest"] == manifest_digest(info, "p-notify/me", "5")
    finally:
        stop_registry(tmp_path)


def test_an_install_with_the_old_shared_account_moves_to_token_auth(tmp_path):
    """state.json + htpasswd of before (one `slipway` account): same address, token auth, no htpasswd."""
    require_tool("docker-registry")
    from devops.registry.server import (
        _free_port,
        _save_state,
        ensure_registry,
        registry_dir,
        stop_registry,
    )

    rdir = registry_dir(tmp_path)
    rdir.mkdir(parents=True)
    address = f"127.0.0.1:{_free_port()}"
    _save_state(rdir, {"address": address, "username": "slipway", "password": "old-shared-pw",
                       "http_secret": "h", "notify_token": "n"})
    (rdir / "htpasswd").write_text("slipway:$2b$05$notarealhashnotarealhashnotarealhashnotarealhas\n")
    try:
        info = ensure_registry(tmp_path, notify_url="")
        assert (info.address, info.username) == (address, "slipway+internal")
        assert not (rdir / "htpasswd").exists()
        assert _status(info.url + "/v2/", ("slipway", "old-shared-pw")) == 401  # Basic is no longer taken
        # Every step had the old password: it is not the internal account's now.
        from devops.registry.server import load_state
        from devops.registry.tokens import authenticate

        assert info.password != "old-shared-pw" and len(info.password) >= 24
        assert authenticate(load_state(tmp_path), "slipway+internal", "old-shared-pw") is None
    finally:
        stop_registry(tmp_path)
