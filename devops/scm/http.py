"""The one small HTTP helper of the provider modules (GitHub, GitLab, Bitbucket).

Plain data in and out, no Django. Every call has a timeout, a response is
read at most `MAX_BODY` bytes (a provider answering gigabytes cannot exhaust
memory), and failures come out as three exceptions the callers act on:

- `Unauthorized` (401): the token was revoked or expired — show "reconnect";
- `Transient` (5xx, 429, timeouts, connection errors): retry later, with the
  provider's `Retry-After` when it sent one;
- `ProviderError` (any other 4xx, malformed JSON): permanent, with the
  provider's message.

Tokens travel only in the `Authorization` header (Bitbucket Cloud accepts no
`?access_token=`); no message of these exceptions contains a header.

The host of a GitHub Enterprise / self-hosted GitLab / Bitbucket Server app is
typed by a project owner, not the operator, so it must not turn Slipway into a
proxy to the services beside it (PostgreSQL, Redis, the registry, the cloud
metadata endpoint, a cluster API): `host_problem` refuses loopback,
link-local, private and other non-public addresses, by literal and by every
address the name resolves to, unless the operator allows them
(SLIPWAY_SCM_ALLOW_PRIVATE, passed down as `allow_private`). The provider
form checks it on save and `Client.request` before each host's first call.
"""
from __future__ import annotations

import ipaddress
import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

TIMEOUT = (5, 20)  # connect, read (seconds)
MAX_BODY = 8 * 1024 * 1024  # one page of repositories or one pipeline file is far below this
MAX_PAGES = 50  # 50 pages x 100 repositories: paging stops there (a bound on time and memory)


class ProviderError(Exception):
    """A permanent failure (4xx but 401, malformed answer); `status` is the HTTP status or 0."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class Unauthorized(ProviderError):
    """401: the token is revoked or expired; the user has to reconnect (or the token be refreshed)."""


class Transient(ProviderError):
    """Maybe passing (5xx, 429, timeout, connection refused); `retry_after` seconds when the provider said."""

    def __init__(self, message: str, status: int = 0, retry_after: float | None = None) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


class NotFound(ProviderError):
    """404 (also what GitHub answers for a private repository the token cannot see)."""


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    url: str

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise ProviderError(f"{self.url}: the answer is not JSON", self.status) from None

    def next_url(self) -> str:
        """The `rel="next"` of the Link header (GitHub, GitLab), else ""."""
        for part in self.headers.get("link", "").split(","):
            m = re.match(r'\s*<([^>]+)>\s*;\s*rel="?next"?', part)
            if m:
                return m.group(1)
        return ""


class HostRefused(ProviderError):
    """The provider's host is this machine or a private network and SLIPWAY_SCM_ALLOW_PRIVATE is off."""


def host_problem(host: str, *, allow_private: bool) -> str | None:
    """Why Slipway may not call `host` (a name or address, maybe with `:port`), or None.

    A name that does not resolve is not refused here: the request itself then fails.
    """
    if allow_private or not host:
        return None
    name = urlsplit(f"//{host}").hostname or ""
    name = name.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return f"{name} is this machine; set SLIPWAY_SCM_ALLOW_PRIVATE=1 to allow it"
    try:
        addrs = [ipaddress.ip_address(name)]
    except ValueError:
        try:  # the shorthand forms the resolver also takes: 127.1, 0x7f.1, 2130706433
            addrs = [ipaddress.ip_address(socket.inet_aton(name))]
        except OSError:
            try:
                infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
            except (socket.gaierror, UnicodeError):
                return None
            addrs = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    for addr in addrs:
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
            addr = addr.ipv4_mapped
        if not addr.is_global or addr.is_multicast:
            return (f"{name} is (or resolves to) {addr}, a loopback, link-local or private address; "
                    "set SLIPWAY_SCM_ALLOW_PRIVATE=1 to allow it")
    return None


@dataclass
class Client:
    """One provider's API root and the header that authenticates (`Authorization: ...`).

    `allow_private`: may the calls reach non-public addresses (`host_problem`)."""

    base: str
    authorization: str = field(default="", repr=False)  # "Bearer <token>": never in a repr
    accept: str = "application/json"
    session: requests.Session | None = field(default=None, repr=False)
    allow_private: bool = False
    _checked: set[str] = field(default_factory=set, repr=False)

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base.rstrip("/") + path

    def _check_host(self, url: str) -> None:
        host = urlsplit(url).netloc.rpartition("@")[2]
        if host in self._checked:
            return
        problem = host_problem(host, allow_private=self.allow_private)
        if problem:
            raise HostRefused(problem)
        self._checked.add(host)

    def request(self, method: str, path: str, *, json_body: Any = None, data: Any = None,
                params: dict | None = None, accept: str = "", auth: tuple[str, str] | None = None,
                files: Any = None,
                ok: tuple[int, ...] = (200, 201, 202, 204)) -> Reply:
        url = self.url(path)
        self._check_host(url)
        headers = {"Accept": accept or self.accept, "User-Agent": "Slipway"}
        if self.authorization and auth is None:
            headers["Authorization"] = self.authorization
        sess = self.session or requests
        try:
            resp = sess.request(method, url, json=json_body, data=data, params=params, headers=headers,
                                auth=auth, files=files, timeout=TIMEOUT, stream=True, allow_redirects=False)
        except requests.Timeout:
            raise Transient(f"{method} {_plain(url)}: timed out") from None
        except requests.RequestException as exc:
            raise Transient(f"{method} {_plain(url)}: {type(exc).__name__}") from None
        try:
            body = _read(resp)
        finally:
            resp.close()
        reply = Reply(resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, body, url)
        if resp.status_code in ok:
            return reply
        message = f"{method} {_plain(url)}: {resp.status_code} {_message(body)}".strip()
        if resp.status_code == 401:
            raise Unauthorized(message, 401)
        if resp.status_code == 404:
            raise NotFound(message, 404)
        if resp.status_code == 429 or resp.status_code >= 500:
            raise Transient(message, resp.status_code, _retry_after(reply.headers))
        if resp.status_code == 403 and reply.headers.get("x-ratelimit-remaining") == "0":
            raise Transient(message, 403, _retry_after(reply.headers))  # GitHub's primary rate limit
        raise ProviderError(message, resp.status_code)

    def delete_if_present(self, path: str) -> None:
        """DELETE `path`; already gone (404) is no error (a hook removed by hand)."""
        try:
            self.request("DELETE", path)
        except NotFound:
            pass

    def file_or_none(self, path: str, name: str, limit: int, *, params: dict | None = None,
                     accept: str = "*/*") -> bytes | None:
        """A raw file's bytes, None when the provider says 404; over `limit` bytes: ProviderError naming `name`."""
        try:
            reply = self.request("GET", path, params=params, accept=accept)
        except NotFound:
            return None
        if len(reply.body) > limit:
            raise ProviderError(f"{name} is {len(reply.body)} bytes; the limit is {limit} bytes")
        return reply.body

    def get_json(self, path: str, **kw) -> Any:
        return self.request("GET", path, **kw).json()

    def pages(self, path: str, *, params: dict | None = None, items=None) -> Iterator[Any]:
        """Every item of a paged list: Link `rel="next"` (GitHub, GitLab) or the body's `next` (Bitbucket).

        `items(body)` picks the list out of a page (Bitbucket's `values`); at most MAX_PAGES pages.
        """
        url: str = path
        for _ in range(MAX_PAGES):
            reply = self.request("GET", url, params=params)
            body = reply.json()
            yield from (items(body) if items else body)
            url = reply.next_url() or (body.get("next", "") if isinstance(body, dict) else "")
            params = None  # the next URL carries the query
            if not url:
                return
            if _origin(self.url(url)) != _origin(self.url("/")):
                # The token goes with every page: never to a host the answer names.
                raise ProviderError(f"{_plain(reply.url)}: the next page is on another host ({_origin(url)})")


def _read(resp) -> bytes:
    chunks, size = [], 0
    for chunk in resp.iter_content(64 * 1024):
        size += len(chunk)
        if size > MAX_BODY:
            raise ProviderError(f"{_plain(resp.url)}: the answer is over {MAX_BODY} bytes", resp.status_code)
        chunks.append(chunk)
    return b"".join(chunks)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _plain(url: str) -> str:
    """The URL without its query (a provider may echo parameters there)."""
    return url.split("?", 1)[0]


def _message(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", errors="replace")
    if isinstance(data, dict):
        for key in ("message", "error_description", "error"):
            value = data.get(key)
            if isinstance(value, dict):
                value = value.get("message")
            if value:
                return str(value)[:300]
    return ""


def _retry_after(headers: dict[str, str]) -> float | None:
    try:
        return float(headers["retry-after"])
    except (KeyError, ValueError):
        return None
