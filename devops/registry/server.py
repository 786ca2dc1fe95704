"""The built-in registry: Debian's `docker-registry` (distribution 2.8), managed by Slipway.

`ensure_registry(data_dir)` is called when the controller starts. It keeps
everything under `<data_dir>/registry/`::

    state.json      address, the internal account's password, the secret project passwords
                    derive from, http secret, notification token (0600)
    config.yml      the distribution config we generate (rewritten on every start)
    token-key.pem   the key Slipway signs registry tokens with (0600); token-cert.pem its
                    certificate, the registry's rootcertbundle (tokens.py)
    storage/        blobs and manifests: images survive restarts of Slipway and the registry
    registry.pid    the running process; registry.log its output

It listens on loopback only (SLIPWAY_REGISTRY_ADDR, else a free port chosen
once and kept in state.json, since image names contain it). Access is per
project through distribution's token auth (tokens.py): a project's steps may
pull and push only `<project id>/...`. Pushes and deletes are announced to
Slipway's `/api/v1/registry/notifications` with a bearer token (the
image-push trigger consumes them).

No Django models here: the runner process calls `registry_info` too.
"""
from __future__ import annotations

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

from devops.registry import tokens

log = logging.getLogger(__name__)

BINARY = "docker-registry"
USERNAME = tokens.INTERNAL_USERNAME
NOTIFY_PATH = "/api/v1/registry/notifications"
INSTALL_HINT = (
    "the built-in registry needs Debian's docker-registry (distribution 2.8): "
    "run `apt-get install docker-registry`, then restart the controller"
)


# registry dir -> pid of the registry this process started (stop_with_controller stops only those).
_started_here: dict[str, int] = {}


class RegistryError(RuntimeError):
    pass


class RegistryNotInstalled(RegistryError):
    def __init__(self) -> None:
        super().__init__(INSTALL_HINT)


@dataclass(frozen=True)
class RegistryInfo:
    """Where the built-in registry is, and Slipway's internal account (never given to steps).

    `password` is a secret. `directory` holds the token signing key: Slipway's
    own requests (catalog, tags) carry tokens it signs itself.
    """

    address: str          # host:port on loopback, e.g. 127.0.0.1:5000 (CICD_LOCAL_REGISTRY)
    username: str
    password: str
    directory: str = ""

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


def load_state(data_dir: Path | str) -> dict:
    """state.json of the built-in registry ({} before its first start). Holds secrets."""
    return _load_state(registry_dir(data_dir))


def _save_state(rdir: Path, state: dict) -> None:
    tmp = rdir / ".state.json.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(state, f)
    os.replace(tmp, rdir / "state.json")


def registry_info(data_dir: Path | str) -> RegistryInfo | None:
    """The built-in registry's address and internal account, if it was ever set up (no check that it runs)."""
    rdir = registry_dir(data_dir)
    state = _load_state(rdir)
    if not state.get("address"):
        return None
    return _info(rdir, state)


def _info(rdir: Path, state: dict) -> RegistryInfo:
    return RegistryInfo(state["address"], state["username"], state["password"], str(rdir))


def project_auth(data_dir: Path | str, project_id: str, *, trusted: bool,
                 execution: str = "") -> tuple[str, str] | None:
    """The registry credential of one project's runs: pull+push of `<project id>/...` for
    trusted runs; for the run `execution` of a pull request, pull of those and pull+push of
    its own `<project id>/pr/<execution>/...` (without `execution`: pull only). None before
    the registry first ran."""
    state = _load_state(registry_dir(data_dir))
    if not state.get("address") or not state.get("account_secret"):
        return None
    if not trusted and execution and not tokens.valid_execution(execution):
        return None  # cannot name a namespace (Slipway's own names always can): no push anywhere
    return tokens.project_credential(state, project_id, push=trusted, execution="" if trusted else execution)


def rotate_project_passwords(data_dir: Path | str) -> None:
    """A new `account_secret`: every project's registry password changes at once (tokens.py).

    Runs started afterwards get the new ones; a running step keeps its token
    until it expires (tokens.TOKEN_TTL), then its old password is refused.
    """
    rdir = registry_dir(data_dir)
    state = _load_state(rdir)
    if not state.get("address"):
        raise RegistryError("the built-in registry was never started here")
    state["account_secret"] = secrets.token_urlsafe(32)
    _save_state(rdir, state)


def token_realm(data_dir: Path | str) -> str:
    """The token endpoint the running config sends clients to ("" before the first start)."""
    import yaml

    try:
        config = yaml.safe_load((registry_dir(data_dir) / "config.yml").read_text()) or {}
    except (FileNotFoundError, yaml.YAMLError):
        return ""
    return str(((config.get("auth") or {}).get("token") or {}).get("realm", ""))


def notification_token(data_dir: Path | str) -> str:
    """The bearer token the registry sends with its notifications ("" before the first start)."""
    return _load_state(registry_dir(data_dir)).get("notify_token", "")


def _config_yaml(rdir: Path, state: dict, notify_url: str, token_realm: str) -> str:
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
        # Token auth: every request needs a JWT from Slipway's token endpoint (tokens.py).
        "auth": {"token": {"realm": token_realm, "service": tokens.SERVICE, "issuer": tokens.ISSUER,
                           "rootcertbundle": str(rdir / tokens.CERT_FILE)}},
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
    token_realm: str | None = None,
    binary: str | None = None,
    timeout: float = 15.0,
    die_with_parent: bool = True,
) -> RegistryInfo:
    """Start the built-in registry unless it already runs with the same config; return its info.

    Idempotent: a registry left running by an earlier controller is reused.
    `address` defaults to settings.SLIPWAY_REGISTRY_ADDR, else the persisted
    one, else a free loopback port; `notify_url` to SLIPWAY_PUBLIC_URL +
    NOTIFY_PATH; `token_realm` to SLIPWAY_PUBLIC_URL + tokens.TOKEN_PATH (the
    token endpoint clients are sent to: buildah must reach it). Raises RegistryNotInstalled (with the install hint) or
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
    address, notify_url, token_realm = _defaults(address, notify_url, token_realm)
    state = _load_state(rdir)
    if state.get("username") not in (None, USERNAME):
        # The one shared account of before token auth ("slipway", htpasswd): its password was
        # handed to every step, pull requests' included, so it must not become the internal one.
        state.pop("password", None)
    state["username"] = USERNAME
    state.setdefault("password", secrets.token_urlsafe(24))
    state.setdefault("account_secret", secrets.token_urlsafe(32))
    state.setdefault("http_secret", secrets.token_urlsafe(32))
    state.setdefault("notify_token", secrets.token_urlsafe(32))
    state["address"] = address or state.get("address") or f"127.0.0.1:{_free_port()}"
    _save_state(rdir, state)
    tokens.ensure_signing_key(rdir)
    (rdir / "htpasswd").unlink(missing_ok=True)  # the one shared account of before token auth

    config = _config_yaml(rdir, state, notify_url, token_realm)
    config_path = rdir / "config.yml"
    pid = _pid_of(rdir)
    unchanged = config_path.exists() and config_path.read_text() == config
    if pid and unchanged and answers(state["address"]):
        return _info(rdir, state)
    if pid:
        stop_registry(data_dir)
    if answers(state["address"]):
        raise RegistryError(f"{state['address']} is already used by another registry; "
                            "set SLIPWAY_REGISTRY_ADDR to a free loopback address")
    config_path.write_text(config)
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
            return _info(rdir, state)
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


def _defaults(address: str | None, notify_url: str | None,
              token_realm: str | None) -> tuple[str | None, str, str]:
    public = "http://127.0.0.1:8000"
    try:
        from django.conf import settings

        if address is None:
            address = getattr(settings, "SLIPWAY_REGISTRY_ADDR", "") or None
        public = settings.PUBLIC_URL
        if notify_url is None:
            notify_url = public + NOTIFY_PATH
    except Exception:  # Django not configured: a plain caller (tests, scripts)
        pass
    return address, notify_url or "", token_realm or public + tokens.TOKEN_PATH


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

def _get(info: RegistryInfo, path: str, scope: tokens.Scope) -> tuple[dict, dict]:
    req = urllib.request.Request(info.url + path)
    token = tokens.internal_token(Path(info.directory), [scope])
    req.add_header("Authorization", f"Bearer {token}")
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
        body, _ = _get(info, f"/v2/_catalog?n=1000&last={urllib.request.quote(last)}",
                       tokens.Scope("registry", "catalog", ("*",)))
        page = body.get("repositories") or []
        repos.extend(page)
        if len(page) < 1000:
            return repos
        last = page[-1]


def tags(info: RegistryInfo, repository: str) -> list[str]:
    """Tags of a repository (`GET /v2/<name>/tags/list`); [] when it has none."""
    try:
        body, _ = _get(info, f"/v2/{repository}/tags/list", _pull(repository))
    except RegistryError as e:
        if " 404 " in str(e):
            return []
        raise
    return sorted(body.get("tags") or [])


def manifest_digest(info: RegistryInfo, repository: str, tag: str) -> str:
    """The digest the registry serves for repository:tag (Docker-Content-Digest)."""
    _, headers = _get(info, f"/v2/{repository}/manifests/{tag}", _pull(repository))
    return headers.get("Docker-Content-Digest", "")


def _pull(repository: str) -> tokens.Scope:
    return tokens.Scope("repository", repository, ("pull",))


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
