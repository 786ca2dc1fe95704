"""Tiny helpers that read settings from the environment and fail loudly.

A typo in an environment variable must stop the process at start-up with a
message naming the variable, not surface later as odd behaviour.
"""
from __future__ import annotations

import os
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def envstr(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def envbool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def envint(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be >= {minimum}")
    return value


def envchoice(name: str, default: str, choices: tuple[str, ...], *, upper: bool = False) -> str:
    value = os.environ.get(name, default).strip()
    if upper:
        value = value.upper()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} must be one of {', '.join(choices)}")
    return value


def redact_url(url: str) -> str:
    """`url` with the password of its user part replaced by `***` (for error messages)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return parts._replace(netloc=netloc).geturl()
    except ValueError:
        return "(unparseable URL)"


def envurl(name: str, default: str, schemes: tuple[str, ...], *, hostless: tuple[str, ...] = ()) -> str:
    """A URL with one of `schemes` and a host (schemes in `hostless`, e.g. sqlite, need none).

    "" (unset) stays "". The message never shows a password from the URL.
    """
    raw = os.environ.get(name, default).strip()
    if not raw:
        return raw
    try:
        parts = urlsplit(raw)
        ok = parts.scheme in schemes and (parts.scheme in hostless or bool(parts.hostname))
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError:
        ok = False
    if not ok:
        forms = ", ".join(f"{s}://..." for s in schemes)
        raise ImproperlyConfigured(f"{name}={redact_url(raw)!r} is not a URL of the form {forms}")
    return raw


def envhostport(name: str, default: str = "") -> str:
    """`host:port` (port 1-65535), or "" when unset."""
    raw = os.environ.get(name, default).strip()
    if not raw:
        return raw
    host, sep, port = raw.rpartition(":")
    if not (sep and host and port.isdigit() and 0 < int(port) < 65536):
        raise ImproperlyConfigured(f"{name}={raw!r} is not host:port (e.g. 127.0.0.1:5000)")
    return raw


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def envduration(name: str, default: str) -> float:
    """A duration in seconds: `90s`, `30m`, `24h`, `7d`; a bare number means hours."""
    raw = os.environ.get(name, default).strip().lower()
    text, unit = (raw[:-1], raw[-1]) if raw and raw[-1] in _UNITS else (raw, "h")
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not text or value < 0 or value != value or value == float("inf"):
        raise ImproperlyConfigured(f"{name}={raw!r} is not a duration (e.g. 30m, 24h, 7d; a number = hours)")
    return value * _UNITS[unit]
