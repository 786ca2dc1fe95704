"""Rules for values users type: PipelineSetting values, secret names and keys, repository URLs.

Shared by the API and the `project` command so both refuse the same input
with the same message. Each `check_*` returns the cleaned value or raises
`ValueError` with a message a user can act on.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

from devops.models import DEFAULT_SETTINGS

_INT = re.compile(r"^[0-9]+$")
_CPU = re.compile(r"^(?:[0-9]+m|[0-9]+(?:\.[0-9]+)?)$")
_QUANTITY = re.compile(r"^[0-9]+(?:\.[0-9]+)?(?:Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
# Kubernetes: a Secret's name is a DNS subdomain; keys are [-._a-zA-Z0-9]+.
SECRET_NAME = re.compile(r"^[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?$")
SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
_URL_SCHEMES = ("http", "https", "ssh", "git", "file")
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+$")  # git@github.com:org/repo.git


def _positive_int(value: str) -> str:
    if not _INT.match(value) or int(value) < 1:
        raise ValueError(f"must be a positive integer, got {value!r}")
    return str(int(value))


def _cpu(value: str) -> str:
    if not _CPU.match(value) or float(value.rstrip("m")) <= 0:
        raise ValueError(f"must be a CPU quantity such as 500m or 2, got {value!r}")
    return value


def _quantity(value: str) -> str:
    if not _QUANTITY.match(value) or float(re.sub(r"[A-Za-z]+$", "", value)) <= 0:
        raise ValueError(f"must be a size such as 512Mi or 10Gi, got {value!r}")
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


SETTING_RULES: dict[str, Callable[[str], str]] = {
    "executor-quota": _positive_int,
    "executor-cpu-request": _cpu,
    "executor-cpu-limit": _cpu,
    "executor-memory-request": _quantity,
    "executor-memory-limit": _quantity,
    "devops-cache-dir": _absolute_path,
    "cache-size-cap": _quantity,
    "log-size-cap": _quantity,
    "registry-mirror": _registry,
    "pip-index-url": _http_url,
    "npm-registry": _http_url,
    "goproxy": _goproxy,
    "maven-mirror": _http_url,
    "step-network": _step_network,
}


def check_setting(name: str, value: str) -> str:
    """The cleaned value of setting `name`; "" (back to the default) is always allowed.

    KeyError for an unknown name (the caller lists the valid ones); ValueError for a bad value.
    """
    if name not in DEFAULT_SETTINGS:
        raise KeyError(name)
    value = value.strip()
    if value == "":
        return ""
    rule = SETTING_RULES.get(name)
    return rule(value) if rule else value


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

    Refuses leading '-' (it would be read by git as an option) and whitespace.
    """
    url = (url or "").strip()
    if not url or url.startswith("-") or any(c.isspace() or ord(c) < 32 for c in url):
        raise ValueError("must be a Git repository URL")
    if _SCP_LIKE.match(url):
        return url
    parts = urlsplit(url)
    if parts.scheme not in _URL_SCHEMES or (parts.scheme != "file" and not parts.netloc):
        raise ValueError(f"must be an {', '.join(_URL_SCHEMES)} or user@host:path Git URL, got {url!r}")
    return url
