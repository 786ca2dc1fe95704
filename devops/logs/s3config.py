"""The `s3://` log store URL: parsing and the problems a system check reports.

Format: `s3://ACCESS_KEY:SECRET_KEY@HOST[:PORT]/BUCKET[?secure=false&region=R]`.
Keys containing `/`, `@`, `:` or `%` must be percent-encoded. `secure`
defaults to true (HTTPS); `region` is optional.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class LogStoreURLError(ValueError):
    """A malformed log store URL; `.check_id` is the system check id it maps to."""

    def __init__(self, message: str, check_id: str):
        super().__init__(message)
        self.check_id = check_id


@dataclass(frozen=True)
class S3Config:
    endpoint: str          # host[:port], as the minio SDK wants it
    access_key: str
    secret_key: str
    bucket: str
    secure: bool = True
    region: str | None = None

    def __repr__(self) -> str:  # never print the secret key
        return f"S3Config(endpoint={self.endpoint!r}, bucket={self.bucket!r}, secure={self.secure})"


def parse_s3_url(url: str) -> S3Config:
    """Parse an `s3://` URL; raise LogStoreURLError naming what is wrong (never the secret)."""
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise LogStoreURLError("the URL must start with s3://", "slipway.E011")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise LogStoreURLError("the port is not a number", "slipway.E011") from None
    if not host:
        raise LogStoreURLError("the URL has no host (s3://KEY:SECRET@HOST:PORT/BUCKET)", "slipway.E011")
    if not parts.username or parts.password is None or parts.password == "":
        raise LogStoreURLError(
            "the URL has no credentials (s3://ACCESS_KEY:SECRET_KEY@HOST:PORT/BUCKET)", "slipway.E012"
        )
    bucket = parts.path.strip("/")
    if not bucket or "/" in bucket:
        raise LogStoreURLError("the URL must name exactly one bucket as its path (/BUCKET)", "slipway.E013")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - {"secure", "region"}
    if unknown:
        raise LogStoreURLError(f"unknown URL option(s): {', '.join(sorted(unknown))}", "slipway.E011")
    secure = True
    if "secure" in query:
        raw = query["secure"][-1].strip().lower()
        if raw not in _TRUE | _FALSE:
            raise LogStoreURLError(f"secure={raw!r} is not a boolean", "slipway.E011")
        secure = raw in _TRUE
    region = query.get("region", [""])[-1] or None
    endpoint = f"{host}:{port}" if port else host
    if ":" in host:  # IPv6 literal
        endpoint = f"[{host}]:{port}" if port else f"[{host}]"
    return S3Config(
        endpoint=endpoint,
        access_key=unquote(parts.username),
        secret_key=unquote(parts.password),
        bucket=bucket,
        secure=secure,
        region=region,
    )


def log_store_url_problems(url: str) -> list[tuple[str, str]]:
    """[(check id, message)] for a SLIPWAY_LOG_STORE value; [] when it is usable."""
    if url.startswith("file://"):
        if not url[len("file://"):].startswith("/"):
            return [("slipway.E010", f"SLIPWAY_LOG_STORE={url!r}: file:// needs an absolute path (file:///path)")]
        return []
    if url.startswith("s3://"):
        try:
            parse_s3_url(url)
        except LogStoreURLError as exc:
            # The URL may hold a secret key: name the problem, not the value.
            return [(exc.check_id, f"SLIPWAY_LOG_STORE (s3://...): {exc}")]
        return []
    return [("slipway.E001", f"SLIPWAY_LOG_STORE={url!r} must start with file:// or s3://")]
