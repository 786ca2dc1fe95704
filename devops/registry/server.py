"""The built-in registry: Debian's `docker-registry` (distribution 2.8), managed by Slipway.

`ensure_registry(data_dir)` is called when the controller starts. It keeps
everything under `<data_dir>/registry/`::

    state.json      address, username, generated password, http secret, notification token (0600)
    config.yml      the distribution config we generate (rewritten on every start)
    htpasswd        bcrypt of the password (distribution's htpasswd auth accepts only bcrypt)
    storage/        blobs and manifests: images survive restarts of Slipway and the registry
    registry.pid    the running process; registry.log its output

It listens on loopback only (SLIPWAY_REGISTRY_ADDR, else a free port chosen
once and kept in state.json, since image names contain it). Pushes and
deletes are announced to Slipway's `/api/v1/registry/notifications` with a
bearer token (the image-push trigger consumes them).

No Django models here: the runner process calls `registry_info` too.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

BINARY = "docker-registry"
USERNAME = "slipway"
NOTIFY_PATH = "/api/v1/registry/notifications"
INSTALL_HINT = (
    "the built-in registry needs Debian's docker-registry (distribution 2.8): "
    "run `apt-get install docker-registry`, then restart the controller"
)
# bcrypt cost: the registry checks the password with bcrypt on EVERY request,
# and the password is 32 random characters, so a high cost buys nothing but
# latency (cost 10 = ~70 ms per blob request).
BCRYPT_ROUNDS = 5


# registry dir -> pid of the registry this process started (stop_with_controller stops only those).
_started_here: dict[str, int] = {}


class RegistryError(RuntimeError):
    pass


class RegistryNotInstalled(RegistryError):
    def __init__(self) -> None:
        super().__init__(INSTALL_HINT)


@dataclass(frozen=True)
class RegistryInfo:
    """How steps and Slipway reach the built-in registry. `password` is a secret."""

    address: str          # host:port on loopback, e.g. 127.0.0.1:5000 (CICD_LOCAL_REGISTRY)
    username: str
    password: str

    @property
    def url(self) -> str:
        return f"http://{self.address}"


def registry_dir(data_dir: Path | str) -> Path:
    return Path(data_dir) / "registry"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _load_state(rdir: Path) -> dict:
    try:
        return json.loads((rdir / "state.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _save_state(rdir: Path, state: dict) -> None:
    tmp = rdir / ".state.json.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(state, f)
    os.replace(tmp, rdir / "state.json")


def registry_info(data_dir: Path | str) -> RegistryInfo | None:
    """The built-in registry's address and credentials, if it was ever set up (no check that it runs)."""
    state = _load_state(registry_dir(data_dir))
    if not state.get("address"):
        return None
    return RegistryInfo(state["address"], state["username"], state["password"])


def notification_token(data_dir: Path | str) -> str:
    """The bearer token the registry sends with its notifications ("" before the first start)."""
    return _load_state(registry_dir(data_dir)).get("notify_token", "")


def _htpasswd_line(username: str, password: str) -> str:
    import bcrypt

    return f"{username}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=BCRYPT_ROUNDS)).decode()}\n"


def _config_yaml(rdir: Path, state: dict, notify_url: str) -> str:
    import yaml

    config: dict = {
        "version": 0.1,
        "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(rdir / "storage")},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": True, "age": "24h", "interval": "6h", "dryrun": False}},
        },
        "http": {"addr": state["address"], "secret": state["http_secret"],
                 "headers": {"X-Content-Type-Options": ["nosniff"]}},
        "auth": {"htpasswd": {"realm": "slipway-registry", "path": str(rdir / "htpasswd")}},
    }
    if notify_url:
        config["notifications"] = {"endpoints": [{
            "name": "slipway",
            "url": notify_url,
            "headers": {"Authorization": [f"Bearer {state['notify_token']}"]},
            "timeout": "2s",
            "threshold": 5,
            "backoff": "10s",
            # Pulls are noise for the image-push trigger.
            "ignore": {"actions": ["pull"]},
        }]}
    return yaml.safe_dump(config, sort_keys=False)


def _pid_of(rdir: Path) -> int | None:
    try:
        pid = int((rdir / "registry.pid").read_text())
    except (FileNotFoundError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    # Guard against pid reuse: it must be a registry serving OUR config.
    if str(rdir / "config.yml").encode() in cmdline:
        return pid
    return None


def answers(address: str, timeout: float = 1.0) -> bool:
    """True when a distribution registry answers at `address` (401 without credentials is fine)."""
    try:
        with urllib.request.urlopen(f"http://{address}/v2/", timeout=timeout) as r:
            return "Docker-Distribution-Api-Version" in r.headers
    except urllib.error.HTTPError as e:
        return "Docker-Distribution-Api-Version" in e.headers
    except OSError:
        return False


def ensure_registry(
    data_dir: Path | str,
    *,
    address: str | None = None,
    notify_url: str | None = None,
    binary: str | None = None,
    timeout: float = 15.0,
    die_with_parent: bool = True,
) -> RegistryInfo:
    """Start the built-in registry unless it already runs with the same config; return its info.

    Idempotent: a registry left running by an earlier controller is reused.
    `address` defaults to settings.SLIPWAY_REGISTRY_ADDR, else the persisted
    one, else a free loopback port; `notify_url` to SLIPWAY_PUBLIC_URL +
    NOTIFY_PATH. Raises RegistryNotInstalled (with the install hint) or
    RegistryError (did not come up; the log's tail is in the message).
    `die_with_parent`: the registry gets SIGTERM when the calling process
    ends, even by kill -9 (PR_SET_PDEATHSIG), so a crashed controller or test
    run never leaves one behind; `registry start` passes False.
    """
    exe = binary or shutil.which(BINARY)
    if not exe:
        raise RegistryNotInstalled()
    rdir = registry_dir(data_dir)
    (rdir / "storage").mkdir(parents=True, exist_ok=True)
    os.chmod(rdir, 0o700)
    address, notify_url = _defaults(address, notify_url)
    state = _load_state(rdir)
    state.setdefault("username", USERNAME)
    state.setdefault("password", secrets.token_urlsafe(24))
    state.setdefault("http_secret", secrets.token_urlsafe(32))
    state.setdefault("notify_token", secrets.token_urlsafe(32))
    state["address"] = address or state.get("address") or f"127.0.0.1:{_free_port()}"
    _save_state(rdir, state)

    config = _config_yaml(rdir, state, notify_url)
    config_path = rdir / "config.yml"
    pid = _pid_of(rdir)
    unchanged = config_path.exists() and config_path.read_text() == config
    if pid and unchanged and answers(state["address"]):
        return RegistryInfo(state["address"], state["username"], state["password"])
    if pid:
        stop_registry(data_dir)
    if answers(state["address"]):
        raise RegistryError(f"{state['address']} is already used by another registry; "
                            "set SLIPWAY_REGISTRY_ADDR to a free loopback address")
    config_path.write_text(config)
    htpasswd = rdir / "htpasswd"
    htpasswd.write_text(_htpasswd_line(state["username"], state["password"]))
    htpasswd.chmod(0o600)
    logfile = open(rdir / "registry.log", "ab")
    try:
        proc = subprocess.Popen(
            [exe, "serve", str(config_path)],
            stdin=subprocess.DEVNULL, stdout=logfile, stderr=subprocess.STDOUT,
            # Its own session: Ctrl-C on a terminal does not kill it mid-write;
            # stop_registry or its parent's end (pdeathsig) does.
            start_new_session=True,
            preexec_fn=_die_with_parent if die_with_parent else None,
        )
    finally:
        logfile.close()
    (rdir / "registry.pid").write_text(str(proc.pid))
    _started_here[str(rdir)] = proc.pid
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            break
        if answers(state["address"], timeout=0.5):
            log.info("built-in registry at %s (pid %s)", state["address"], proc.pid)
            return RegistryInfo(state["address"], state["username"], state["password"])
        time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    tail = (rdir / "registry.log").read_text(errors="replace")[-800:]
    raise RegistryError(f"docker-registry did not come up on {state['address']}: {tail}")


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies (Linux PR_SET_PDEATHSIG)."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _defaults(address: str | None, notify_url: str | None) -> tuple[str | None, str]:
    try:
        from django.conf import settings

        if address is None:
            address = getattr(settings, "SLIPWAY_REGISTRY_ADDR", "") or None
        if notify_url is None:
            notify_url = settings.PUBLIC_URL + NOTIFY_PATH
    except Exception:  # Django not configured: a plain caller (tests, scripts)
        pass
    return address, notify_url or ""


def stop_registry(data_dir: Path | str, timeout: float = 10.0) -> bool:
    """Stop the built-in registry if it runs; True if it did."""
    rdir = registry_dir(data_dir)
    pid = _pid_of(rdir)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + timeout
    while time.monotonic() < end and _pid_of(rdir) == pid:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                break
        except ChildProcessError:
            pass  # not our child (started by an earlier process): poll /proc instead
        time.sleep(0.05)
    else:
        if _pid_of(rdir) == pid:
            os.kill(pid, signal.SIGKILL)
    (rdir / "registry.pid").unlink(missing_ok=True)
    return True


# --- the registry's own HTTP API v2 --------------------------------------------

def _get(info: RegistryInfo, path: str) -> tuple[dict, dict]:
    req = urllib.request.Request(info.url + path)
    token = base64.b64encode(f"{info.username}:{info.password}".encode()).decode()
    req.add_header("Authorization", f"Basic {token}")
    req.add_header("Accept", "application/vnd.oci.image.manifest.v1+json, "
                             "application/vnd.docker.distribution.manifest.v2+json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"{}"), dict(r.headers)
    except urllib.error.HTTPError as e:
        raise RegistryError(f"registry {info.address} answered {e.code} for {path}") from None
    except OSError as e:
        raise RegistryError(f"registry {info.address} is not reachable: {e}") from None


def catalog(info: RegistryInfo) -> list[str]:
    """Repositories, as the registry reports them (`GET /v2/_catalog`, all pages)."""
    repos: list[str] = []
    last = ""
    while True:
        body, _ = _get(info, f"/v2/_catalog?n=1000&last={urllib.request.quote(last)}")
        page = body.get("repositories") or []
        repos.extend(page)
        if len(page) < 1000:
            return repos
        last = page[-1]


def tags(info: RegistryInfo, repository: str) -> list[str]:
    """Tags of a repository (`GET /v2/<name>/tags/list`); [] when it has none."""
    try:
        body, _ = _get(info, f"/v2/{repository}/tags/list")
    except RegistryError as e:
        if " 404 " in str(e):
            return []
        raise
    return sorted(body.get("tags") or [])


def manifest_digest(info: RegistryInfo, repository: str, tag: str) -> str:
    """The digest the registry serves for repository:tag (Docker-Content-Digest)."""
    _, headers = _get(info, f"/v2/{repository}/manifests/{tag}")
    return headers.get("Docker-Content-Digest", "")


def start_with_controller() -> RegistryInfo | None:
    """`runcontroller` calls this once at start: the built-in registry when enabled and installed.

    Never raises: without docker-registry the controller runs anyway and
    publish steps to the built-in registry fail with INSTALL_HINT.
    """
    from django.conf import settings

    if not getattr(settings, "SLIPWAY_REGISTRY", True) or settings.SLIPWAY_ENGINE != "local":
        return None
    if getattr(settings, "SLIPWAY_STEP_RUNTIME", "") == "dummy":
        return None  # nothing really runs (tests, demos): no step can publish
    try:
        info = ensure_registry(settings.DATA_DIR)
    except RegistryNotInstalled:
        log.warning("built-in registry not started: %s", INSTALL_HINT)
        return None
    except RegistryError as e:
        log.error("built-in registry not started: %s", e)
        return None
    log.info("built-in registry at %s (CICD_LOCAL_REGISTRY)", info.address)
    return info


def stop_with_controller() -> None:
    """On a clean controller exit: stop the registry if THIS process started it.

    One adopted from an earlier controller keeps running (another controller may use it).
    """
    from django.conf import settings

    rdir = registry_dir(settings.DATA_DIR)
    pid = _started_here.pop(str(rdir), None)
    if pid is not None and _pid_of(rdir) == pid:
        stop_registry(settings.DATA_DIR)
