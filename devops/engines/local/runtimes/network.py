"""The network of one step (container and sandbox runtimes): a network namespace of its own.

The project setting `step-network` chooses it (README *Step runtimes*):

  outbound (default)  `slirp4netns --disable-host-loopback` gives the namespace a
                      user-mode uplink (10.0.2.100, gateway 10.0.2.2): connections
                      to the internet work, the gateway never leads to the host's
                      loopback, and every address of the host itself (on any of
                      its interfaces: 192.0.2.2, docker bridges, ...) gets an
                      `unreachable` route inside the namespace, so no service of this
                      machine is reachable (PostgreSQL, Redis, the web port). The
                      one exception is on purpose: the
                      built-in registry's loopback `host:port` (CICD_LOCAL_REGISTRY)
                      is relayed into the namespace at the same address, so image
                      names stay valid inside; the registry still asks for its
                      credentials.
  none                only the namespace's own loopback.

The step holds no capability over the namespace (it is owned by the host's
user namespace; container steps lack CAP_NET_ADMIN, sandbox steps have no
capability at all), so it cannot remove those routes. The namespace exists
only as a file descriptor of the runner (no /run/netns entry to leak) and
dies with the step; slirp4netns exits when the runner closes its exit pipe or
dies. The step joins the namespace with `nsenter --net=/proc/self/fd/N`.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import select
import shutil
import socket
import struct
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path

import psutil

from devops.engines.local.errors import RuntimeUnavailable, StepStartError

NETWORKS = ("outbound", "none")
CLONE_NEWNET = 0x40000000
SLIRP_READY_TIMEOUT = 20.0
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


def network_mode(settings: Mapping[str, str]) -> str:
    """The project's `step-network` ("" = outbound); ValueError for any other value."""
    value = (settings.get("step-network") or "outbound").strip()
    if value not in NETWORKS:
        raise ValueError(f"step-network must be one of {', '.join(NETWORKS)}, got {value!r}")
    return value


def check_tools(mode: str) -> None:
    """RuntimeUnavailable when the tools `mode` needs are missing (never a silent fallback)."""
    needed = ["nsenter"] + (["slirp4netns"] if mode == "outbound" else [])
    missing = [t for t in needed if not shutil.which(t)]
    if missing:
        raise RuntimeUnavailable(
            f"step-network {mode} needs {', '.join(missing)} "
            "(Debian packages util-linux, slirp4netns)"
        )


def describe(mode: str) -> str:
    """What the first log line says about the network."""
    if mode == "none":
        return "network: none (own namespace, loopback only)"
    return (
        "network: outbound (slirp4netns, host loopback and the host's own addresses blocked;"
        " only the built-in registry is relayed)"
    )


def host_addresses() -> list[str]:
    """Every IPv4 address on this machine's interfaces, loopback excepted.

    (IPv6 needs no list: the step's namespace has no IPv6 route at all.)
    """
    out = []
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                out.append(a.address)
    return sorted(set(out))


# ioctls (linux/sockios.h) and route flags (linux/route.h): set up the
# namespace without forking `ip` for every step.
SIOCGIFFLAGS, SIOCSIFFLAGS, SIOCADDRT = 0x8913, 0x8914, 0x890B
IFF_UP = 0x1
RTF_UP, RTF_HOST, RTF_REJECT = 0x1, 0x4, 0x200
IFREQ = "16sh22x"  # struct ifreq: name, flags, rest of the union


class _SockaddrIn(ctypes.Structure):
    _fields_ = [
        ("family", ctypes.c_ushort),
        ("port", ctypes.c_ushort),
        ("addr", ctypes.c_ubyte * 4),
        ("zero", ctypes.c_ubyte * 8),
    ]


class _RtEntry(ctypes.Structure):  # struct rtentry (linux/route.h)
    _fields_ = [
        ("pad1", ctypes.c_ulong),
        ("dst", _SockaddrIn),
        ("gateway", _SockaddrIn),
        ("genmask", _SockaddrIn),
        ("flags", ctypes.c_ushort),
        ("pad2", ctypes.c_short),
        ("pad3", ctypes.c_ulong),
        ("pad4", ctypes.c_void_p),
        ("metric", ctypes.c_short),
        ("dev", ctypes.c_char_p),
        ("mtu", ctypes.c_ulong),
        ("window", ctypes.c_ulong),
        ("irtt", ctypes.c_ushort),
    ]


def _sockaddr(address: str) -> _SockaddrIn:
    sa = _SockaddrIn()
    sa.family = socket.AF_INET
    sa.addr[:] = list(socket.inet_aton(address))
    return sa


def _configure(blocked: list[str]) -> None:
    """In the calling thread's namespace: loopback up, an `unreachable` host route per address."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack(IFREQ, fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack(IFREQ, b"lo", 0)))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack(IFREQ, b"lo", flags | IFF_UP))
        for address in blocked:
            rt = _RtEntry()
            rt.dst, rt.genmask = _sockaddr(address), _sockaddr("255.255.255.255")
            rt.flags = RTF_UP | RTF_HOST | RTF_REJECT
            fcntl.ioctl(s, SIOCADDRT, bytearray(rt))


SLIRP_DNS = "10.0.2.3"  # slirp4netns's DNS forwarder: it asks the host's resolvers


def step_resolv_conf(run_dir: Path, host_conf: str = "/etc/resolv.conf") -> Path | None:
    """A resolv.conf for outbound steps when the host's names only loopback resolvers; else None.

    A loopback resolver (systemd-resolved's 127.0.0.53) is unreachable from
    the step's namespace; slirp4netns's forwarder at 10.0.2.3 asks it for the
    step (DNS only, nothing else of the host's loopback).
    """
    try:
        text = Path(host_conf).read_text()
    except OSError:
        text = ""
    servers = [
        line.split()[1]
        for line in text.splitlines()
        if line.strip().startswith("nameserver") and len(line.split()) > 1
    ]
    if any(not (a.startswith("127.") or a == "::1") for a in servers):
        return None
    keep = [line for line in text.splitlines() if line.strip().startswith(("search", "options"))]
    path = run_dir / "resolv.conf"
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text("\n".join([f"nameserver {SLIRP_DNS}", *keep]) + "\n")
    path.chmod(0o644)
    return path


def registry_endpoint(address: str) -> tuple[str, int] | None:
    """`127.0.0.1:5000` -> ("127.0.0.1", 5000); None unless a loopback host:port."""
    host, sep, port = address.rpartition(":")
    if not sep or host not in LOOPBACK_HOSTS or not port.isdigit():
        return None
    return ("127.0.0.1" if host == "localhost" else host), int(port)


class StepNetwork:
    """One step's network namespace and what feeds it. `close()` is idempotent."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.fd = -1
        self.slirp: subprocess.Popen | None = None
        self._exit_w = -1
        self._relay: _Relay | None = None
        self._lock = threading.Lock()

    @classmethod
    def open(cls, mode: str, registry: str = "") -> StepNetwork:
        """Make the namespace; for `outbound` start slirp4netns and wait until it is configured.

        StepStartError when it cannot be made (the step then fails with the reason).
        """
        net = cls(mode)
        try:
            net._make(registry)
            if mode == "outbound":
                net._start_slirp()
        except BaseException:
            net.close()
            raise
        return net

    def enter(self, argv: list[str]) -> list[str]:
        """`argv` run inside the namespace (pass `self.fd` to the child: `pass_fds`)."""
        return [shutil.which("nsenter") or "nsenter", f"--net=/proc/self/fd/{self.fd}", "--", *argv]

    def _make(self, registry: str) -> None:
        # unshare(CLONE_NEWNET) changes the namespace of the calling *thread*
        # only: a short-lived thread makes the namespace, keeps an fd to it and
        # configures it with ioctls; the runner's other threads never leave
        # the host's.
        blocked = host_addresses() if self.mode == "outbound" else []
        endpoint = registry_endpoint(registry) if self.mode == "outbound" else None
        box: dict[str, object] = {}

        def body() -> None:
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.unshare(CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
                box["fd"] = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
                _configure(blocked)
                if endpoint is not None:
                    # Bound here, the listener lives in the step's namespace;
                    # the relay connects out from the host's.
                    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.bind(endpoint)
                    sock.listen(16)
                    box["listener"] = sock
            except BaseException as exc:  # reported by the caller's thread
                box["error"] = exc

        t = threading.Thread(target=body, name="step-netns", daemon=True)
        t.start()
        t.join()
        if isinstance(box.get("fd"), int):
            self.fd = box["fd"]  # type: ignore[assignment]
        if "error" in box:
            raise StepStartError(f"cannot make the step's network namespace: {box['error']}")
        if "listener" in box and endpoint is not None:
            self._relay = _Relay(box["listener"], endpoint)  # type: ignore[arg-type]

    def _start_slirp(self) -> None:
        ready_r, ready_w = os.pipe()
        exit_r, exit_w = os.pipe()
        self._exit_w = exit_w
        argv = [
            shutil.which("slirp4netns") or "slirp4netns",
            "--configure",
            "--mtu=65520",
            "--disable-host-loopback",
            "--enable-sandbox",
            "--enable-seccomp",
            f"--ready-fd={ready_w}",
            f"--exit-fd={exit_r}",
            "--netns-type=path",
            f"/proc/self/fd/{self.fd}",
            "tap0",
        ]
        try:
            self.slirp = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(self.fd, ready_w, exit_r),
            )
        except OSError as exc:
            raise StepStartError(f"cannot start slirp4netns: {exc.strerror}") from None
        finally:
            os.close(ready_w)
            os.close(exit_r)
        try:
            ready, _, _ = select.select([ready_r], [], [], SLIRP_READY_TIMEOUT)
            ok = bool(ready) and os.read(ready_r, 1) == b"1"
        finally:
            os.close(ready_r)
        if not ok:
            code = self.slirp.poll()
            raise StepStartError(
                "slirp4netns did not configure the step's network"
                + (f" (exit code {code})" if code is not None else "")
            )

    def close(self) -> None:
        with self._lock:
            relay, self._relay = self._relay, None
            slirp, self.slirp = self.slirp, None
            exit_w, self._exit_w = self._exit_w, -1
            fd, self.fd = self.fd, -1
        if relay is not None:
            relay.close()
        if exit_w >= 0:
            os.close(exit_w)  # what ends slirp4netns if the runner itself dies
        if slirp is not None:
            # It keeps no state: SIGKILL ends it. Its exit (the kernel tearing
            # down the tap device) takes ~25 ms; the step need not wait for it.
            slirp.kill()
            threading.Thread(target=slirp.wait, name="slirp-reap", daemon=True).start()
        if fd >= 0:
            os.close(fd)


class _Relay:
    """Accepts in the step's namespace, connects to `target` from the host's: one port, nothing else."""

    def __init__(self, listener: socket.socket, target: tuple[str, int]) -> None:
        self.listener = listener
        self.target = target
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name="registry-relay", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._closed:
                    client.close()
                    upstream.close()
                    return
                self._conns.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns, self._conns = list(self._conns), set()
        # shutdown() wakes a thread blocked in accept(); close() alone may not.
        for s in (self.listener, *conns):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
