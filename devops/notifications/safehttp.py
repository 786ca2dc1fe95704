"""POST a JSON body to a notifier's URL without letting it reach the host's own services.

Why this is not `urllib.request.urlopen`: a notifier URL is written by a
project member, and Slipway's controller runs next to PostgreSQL, Redis, the
built-in registry and cloud metadata endpoints. So:

- only `http` and `https`, no user:password in the URL;
- the host is resolved once and EVERY address is checked: loopback,
  link-local (169.254/16, fe80::/10, the metadata endpoints), private
  (10/8, 172.16/12, 192.168/16, fc00::/7), shared (100.64/10), multicast,
  reserved and unspecified addresses are refused unless the operator
  allows them (SLIPWAY_NOTIFY_ALLOW_PRIVATE, `SendOptions.allow_private`);
- the connection goes to the address that was checked (no second DNS
  answer can swap it: DNS rebinding), with the URL's host in `Host` and,
  for https, in SNI and the certificate check;
- redirects are not followed (a 3xx is a permanent failure naming it);
- one timeout for connecting and for each read; at most
  `options.max_response` bytes of the answer are read.
"""
from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from urllib.parse import urlsplit

from devops.notifications.base import Notifier, PermanentFailure, SendOptions, TemporaryFailure

USER_AGENT = "Slipway-Notifier/1"


def url_problem(url: str, *, allow_private: bool) -> str | None:
    """What is wrong with a notifier URL without resolving it (None when it may be saved).

    Literal addresses and `localhost` names are checked here, so a form
    names the problem at once; names are checked again, resolved, at send time.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        return f"not a URL: {exc}"
    if parts.scheme not in ("http", "https"):
        return "an http:// or https:// URL"
    if not parts.hostname:
        return "the URL has no host"
    if parts.username is not None or parts.password is not None:
        return "no user:password in the URL (put a token in the path or use the webhook's secret)"
    if port == 0:
        return "port 0 is not a port"
    if allow_private:
        return None
    host = parts.hostname.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return f"{host} is this machine; notifiers may not reach it (SLIPWAY_NOTIFY_ALLOW_PRIVATE)"
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        try:  # the shorthand forms the resolver also takes: 127.1, 0x7f.1, 2130706433
            addr = ipaddress.ip_address(socket.inet_aton(host))
        except OSError:
            return None
    return address_problem(addr)


def address_problem(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    for test, what in ((addr.is_loopback, "loopback"), (addr.is_link_local, "link-local"),
                       (addr.is_unspecified, "unspecified"), (addr.is_multicast, "multicast"),
                       (addr.is_private, "private"), (addr.is_reserved, "reserved"),
                       (not addr.is_global, "not public")):
        if test:
            return f"{addr} is a {what} address; notifiers may not reach it (SLIPWAY_NOTIFY_ALLOW_PRIVATE)"
    return None


def resolve(host: str, port: int, *, allow_private: bool, timeout: float) -> tuple[str, int]:
    """The (address, port) to connect to, after checking every address the name has."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        # Names that do not resolve now may resolve later (a DNS outage).
        raise TemporaryFailure(f"cannot resolve {host}: {exc.strerror or exc}") from None
    if not infos:
        raise TemporaryFailure(f"cannot resolve {host}")
    addrs = [info[4] for info in infos]
    if not allow_private:
        for sockaddr in addrs:
            problem = address_problem(ipaddress.ip_address(sockaddr[0].split("%")[0]))
            if problem:
                raise PermanentFailure(f"{host}: {problem}")
    return addrs[0][0], addrs[0][1]


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post_json(url: str, body: bytes, headers: dict[str, str], options: SendOptions) -> str:
    """POST `body` (JSON bytes); returns "HTTP <status>" for a 2xx, else raises a DeliveryFailure.

    5xx, 408, 429, timeouts, refused or reset connections: TemporaryFailure;
    other statuses and refused addresses: PermanentFailure. Failure messages
    name the host, never the path or query (where secret tokens live).
    """
    problem = url_problem(url, allow_private=options.allow_private)
    if problem:
        raise PermanentFailure(problem)
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address, port = resolve(host, port, allow_private=options.allow_private, timeout=options.timeout)
    cls = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
    conn = cls(host, port, address, options.timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    all_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                   "Content-Length": str(len(body)), **headers}
    try:
        conn.request("POST", target, body=body, headers=all_headers)
        resp = conn.getresponse()
        answer = resp.read(options.max_response)
        status = resp.status
    except TimeoutError:
        raise TemporaryFailure(f"{host}: timed out after {options.timeout:g} s") from None
    except ssl.SSLError as exc:
        raise PermanentFailure(f"{host}: TLS: {exc.reason or exc}") from None
    except (ConnectionError, OSError, http.client.HTTPException) as exc:
        raise TemporaryFailure(f"{host}: {type(exc).__name__}: {exc}") from None
    finally:
        conn.close()
    if 200 <= status < 300:
        return f"HTTP {status}"
    snippet = answer[:200].decode("utf-8", "replace").strip()
    said = f"HTTP {status}" + (f": {snippet}" if snippet else "")
    if status >= 500 or status in (408, 429):
        raise TemporaryFailure(f"{host}: {said}")
    if 300 <= status < 400:
        raise PermanentFailure(f"{host}: {said} (redirects are not followed; use the final URL)")
    raise PermanentFailure(f"{host}: {said}")


class HTTPNotifier(Notifier):
    """A notifier that POSTs to its `url` field (webhook, Slack): the URL is checked on save too."""

    @classmethod
    def check(cls, config: dict[str, str], *, allow_private: bool = False) -> dict[str, str]:
        errors = super().check(config, allow_private=allow_private)
        url = str(config.get("url", "")).strip()
        if url and "url" not in errors:
            problem = url_problem(url, allow_private=allow_private)
            if problem:
                errors["url"] = problem
        return errors
