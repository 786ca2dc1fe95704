"""Rules for values users type: PipelineSetting values, secret names and keys, repository URLs.

Shared by the API and the `project` command so both refuse the same input
with the same message. Each `check_*` returns the cleaned value or raises
`ValueError` with a message a user can act on.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable
from urllib.parse import urlsplit

from devops.models import DEFAULT_SETTINGS
from devops.quantity import parse_bytes, parse_cpu
from devops.scm.git import CREDENTIALS_IN_URL, embedded_credentials

_INT = re.compile(r"^[0-9]+$")
# Kubernetes: a Secret's name is a DNS subdomain; keys are [-._a-zA-Z0-9]+.
SECRET_NAME = re.compile(r"^[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?$")
SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
_URL_SCHEMES = ("http", "https", "ssh", "git", "file")
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+$")  # git@github.com:org/repo.git


def _positive_int(value: str) -> str:
    if not _INT.match(value) or int(value) < 1:
        raise ValueError(f"must be a positive integer, got {value!r}")
    return str(int(value))


# The engine's own parser (devops.quantity): what is accepted here is what it
# applies. A limit or request of 0 means none, as in Kubernetes; a cap must be > 0.
def _cpu(value: str) -> str:
    parse_cpu(value, zero_ok=True)
    return value


def _quantity(value: str) -> str:
    parse_bytes(value, zero_ok=True)
    return value


def _size_cap(value: str) -> str:
    parse_bytes(value)
    return value


def _absolute_path(value: str) -> str:
    if not value.startswith("/") or "\x00" in value:
        raise ValueError(f"must be an absolute path, got {value!r}")
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in value):
        raise ValueError(f"must be an http(s) URL, got {value!r}")
    return value


def _goproxy(value: str) -> str:
    # GOPROXY is a list of URLs and the keywords direct/off, split by , or |.
    for entry in re.split(r"[,|]", value):
        if entry not in ("direct", "off"):
            _http_url(entry)
    return value


def _registry(value: str) -> str:
    # A host[:port][/path] or an http(s) URL.
    if value.startswith(("http://", "https://")):
        return _http_url(value)
    if not re.match(r"^[A-Za-z0-9.-]+(?::[0-9]+)?(?:/[A-Za-z0-9._/-]*)?$", value):
        raise ValueError(f"must be a registry host such as mirror.example:5000, got {value!r}")
    return value


def _step_network(value: str) -> str:
    if value not in ("outbound", "none"):
        raise ValueError(f"must be outbound or none, got {value!r}")
    return value


_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")  # a DNS-1123 label, as Kubernetes wants


def _namespace(value: str) -> str:
    if not _NAMESPACE.match(value):
        raise ValueError(f"must be a Kubernetes namespace name (lowercase letters, digits, '-'), got {value!r}")
    return value


def _namespaces(value: str) -> str:
    return ",".join(_namespace(ns.strip()) for ns in value.split(",") if ns.strip())


SETTING_RULES: dict[str, Callable[[str], str]] = {
    "executor-quota": _positive_int,
    "executor-cpu-request": _cpu,
    "executor-cpu-limit": _cpu,
    "executor-memory-request": _quantity,
    "executor-memory-limit": _quantity,
    "devops-cache-dir": _absolute_path,
    "cache-size-cap": _size_cap,
    "log-size-cap": _size_cap,
    "registry-mirror": _registry,
    "pip-index-url": _http_url,
    "npm-registry": _http_url,
    "goproxy": _goproxy,
    "maven-mirror": _http_url,
    "step-network": _step_network,
    "namespaces": _namespaces,
    "deploy-namespace": _namespace,
}


# Slipway's own directories in SLIPWAY_DATA_DIR: a cache root inside one of
# them would let a project's caches read or overwrite runs, keys or images.
# (`controllers`: node heartbeats; `log-spool`: S3 logs not yet uploaded, every project's;
# the SQLite file with its -wal/-shm companions.)
_DATA_DIR_OWN = frozenset({"runs", "workspaces", "containers", "registry", "mirrors", "logs", "doorbell",
                           "static", "controllers", "log-spool", "secret_key", "slipway.sqlite3",
                           "slipway.sqlite3-wal", "slipway.sqlite3-shm", "slipway.sqlite3-journal"})


def _under_data_dir(value: str) -> str:
    """devops-cache-dir for a non-superuser: a directory of its own under SLIPWAY_DATA_DIR.

    The runner copies caches in and out of this root as the Slipway user, so
    an owner who could name any path could read or overwrite any host directory.
    """
    from django.conf import settings

    data_dir = os.path.realpath(settings.DATA_DIR)
    path = os.path.realpath(value)  # `..` and symlinks resolved, as the runner will see it
    rel = os.path.relpath(path, data_dir)
    if rel == "." or rel.startswith("..") or rel.split(os.sep, 1)[0] in _DATA_DIR_OWN:
        raise ValueError(
            f"devops-cache-dir must lie under SLIPWAY_DATA_DIR ({data_dir}), outside Slipway's own "
            f"directories there (e.g. {os.path.join(data_dir, 'cache', 'NAME')}); only a superuser may "
            f"set another path, got {value!r}"
        )
    return value


# Rules that hold unless a superuser sets the value (API: request.user.is_superuser;
# the `project setting` command runs as the machine's operator and counts as one).
RESTRICTED_SETTING_RULES: dict[str, Callable[[str], str]] = {
    "devops-cache-dir": _under_data_dir,
}


def check_setting(name: str, value: str, *, superuser: bool = False) -> str:
    """The cleaned value of setting `name`; "" (back to the default) is always allowed.

    KeyError for an unknown name (the caller lists the valid ones); ValueError for a bad value.
    `superuser=False` also applies RESTRICTED_SETTING_RULES (host paths).
    """
    if name not in DEFAULT_SETTINGS:
        raise KeyError(name)
    value = value.strip()
    if value == "":
        return ""
    rule = SETTING_RULES.get(name)
    value = rule(value) if rule else value
    restricted = RESTRICTED_SETTING_RULES.get(name)
    return restricted(value) if restricted and not superuser else value


def check_secret_name(name: str) -> str:
    if not SECRET_NAME.match(name or ""):
        raise ValueError(
            f"{name!r} is not a valid secret name: lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit"
        )
    return name


def check_secret_data(data: object) -> dict[str, str]:
    """A {key: value} mapping of strings with Kubernetes-valid keys."""
    # ValueError, not TypeError: this is bad user input, reported like any other.
    if not isinstance(data, dict):
        raise ValueError("must be an object of key: value strings")
    for key, value in data.items():
        if not SECRET_KEY.match(str(key)):
            raise ValueError(f"{key!r} is not a valid key: letters, digits, '-', '_' and '.'")
        if not isinstance(value, str):
            raise ValueError(f"the value of {key!r} must be a string")
    return dict(data)


def check_repository_url(url: str) -> str:
    """A Git URL (http(s), ssh, git, file, or scp-like `user@host:path`).

    Refuses leading '-' (it would be read by git as an option), whitespace,
    and credentials in the URL (`https://user:token@host/...`: store a credential instead).
    """
    url = (url or "").strip()
    if not url or url.startswith("-") or any(c.isspace() or ord(c) < 32 for c in url):
        raise ValueError("must be a Git repository URL")
    if _SCP_LIKE.match(url):
        return url
    if embedded_credentials(url):
        raise ValueError(CREDENTIALS_IN_URL)  # the URL itself is not echoed: it holds the secret
    parts = urlsplit(url)
    if parts.scheme not in _URL_SCHEMES or (parts.scheme != "file" and not parts.netloc):
        raise ValueError(f"must be an {', '.join(_URL_SCHEMES)} or user@host:path Git URL, got {url!r}")
    return url
