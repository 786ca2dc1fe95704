"""The controller's doorbell: wake-ups instead of a slow poll. No Django here.

Every waiting controller (and `pipeline run` waiting inline) binds a UNIX
datagram socket in `<data_dir>/doorbell/<pid>-<n>.sock`. `ring(data_dir)`
sends one empty datagram to each of them; a bell that nobody listens on any
more (its process died, kill -9 included) is removed by the first ring that
finds it refusing.

**For the local engine's runner:** call `ring(data_dir)` after writing a new
step state to disk (started, finished) and when the run ends, so the
controller syncs at once instead of at its next idle timeout. `ring` never
raises and never blocks (non-blocking sends; a full socket buffer means the
controller is already awake).

Across machines (several controllers on PostgreSQL) the `do_*` actions also
send `NOTIFY slipway_controller`; `Controller.wait` listens on both.
"""
from __future__ import annotations

import errno
import itertools
import os
import select
import socket
from pathlib import Path
from typing import Self

_counter = itertools.count()


def bell_dir(data_dir: str | os.PathLike, kind: str = "doorbell") -> Path:
    return Path(data_dir) / kind


def ring(data_dir: str | os.PathLike, payload: bytes = b"!", kind: str = "doorbell") -> int:
    """Wake every listener; returns how many were reached. Never raises.

    `kind` names another set of bells in the data dir (the web processes'
    "status" bells, devops/web/live.py) and `payload` is what each receives
    (one datagram, so at most a few KiB).
    """
    directory = bell_dir(data_dir, kind)
    try:
        names = os.listdir(directory)
    except OSError:
        return 0
    reached = 0
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        for name in names:
            if not name.endswith(".sock"):
                continue
            path = directory / name
            try:
                sock.sendto(payload, str(path))
                reached += 1
            except BlockingIOError:
                reached += 1  # its queue is full: it has wake-ups pending already
            except OSError as exc:
                if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
                    # Nobody bound: a listener that died without cleaning up.
                    with _ignore():
                        path.unlink()
    finally:
        sock.close()
    return reached


class _ignore:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return True


class Bell:
    """One listener. `fileno()` lets callers `select` on it with other sources."""

    def __init__(self, data_dir: str | os.PathLike, kind: str = "doorbell"):
        directory = bell_dir(data_dir, kind)
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{os.getpid()}-{next(_counter)}.sock"
        with _ignore():
            self.path.unlink()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(self.path))
        self._sock.setblocking(False)

    def fileno(self) -> int:
        return self._sock.fileno()

    def drain(self) -> int:
        """Consume pending rings; returns how many there were."""
        n = 0
        while True:
            try:
                self._sock.recv(64)
                n += 1
            except (BlockingIOError, InterruptedError):
                return n
            except OSError:
                return n

    def receive(self) -> list[bytes]:
        """The pending datagrams themselves (for bells that carry a payload)."""
        out = []
        while True:
            try:
                out.append(self._sock.recv(65536))
            except (BlockingIOError, InterruptedError):
                return out
            except OSError:
                return out

    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` seconds for a ring; True if one came."""
        try:
            ready, _, _ = select.select([self._sock], [], [], max(0.0, timeout))
        except InterruptedError:
            return False
        return bool(ready) and self.drain() > 0

    def close(self) -> None:
        self._sock.close()
        with _ignore():
            self.path.unlink()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
