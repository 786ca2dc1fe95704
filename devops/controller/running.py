"""The controller's run loop around its passes: signals, heartbeats, wake-ups, sleeping.

A mixin of `devops.controller.loop.Controller` (which holds the passes,
`tick()`); kept apart so each file reads as one concern.
"""
from __future__ import annotations

import logging
import select
import signal
import time
from typing import Any

from django.db import connection

from devops.controller import heartbeat
from devops.controller.actions import NOTIFY_CHANNEL
from devops.doorbell import Bell

log = logging.getLogger("devops.controller")


class RunLoop:
    """`run_forever()`: tick; sleep only when no tick did work (until a wake-up or 1 s)."""

    data_dir: Any
    engine_name: str
    idle_timeout: float
    stopping: bool
    _bell: Bell | None
    _listen: Any
    _last_beat: float

    def install_signal_handlers(self) -> dict[int, Any]:
        """SIGTERM/SIGINT set `stopping`; returns the previous handlers (for `restore_signal_handlers`)."""
        def stop(signum, frame):
            log.info("signal %d: finishing the current unit, then exiting", signum)
            self.stopping = True

        return {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}

    @staticmethod
    def restore_signal_handlers(previous: dict[int, Any]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def heartbeat(self, force: bool = False) -> None:
        """After each pass, at most once a second: the local heartbeat file and this node's row."""
        now = time.monotonic()
        if force or now - self._last_beat >= 1.0:
            heartbeat.beat(self.data_dir, engine=self.engine_name)
            try:
                self.heartbeat_node()
            except Exception:  # the next beat retries; other nodes wait SLIPWAY_NODE_TIMEOUT anyway
                log.warning("node heartbeat failed", exc_info=True)
                drop_broken_connection()
            self._last_beat = now

    def open_wakeups(self) -> None:
        if self._bell is None:
            self._bell = Bell(self.data_dir)
        if self._listen is None and connection.vendor == "postgresql":
            try:
                self._listen = _listen_connection()
            except Exception:
                log.warning("LISTEN unavailable; relying on the local doorbell", exc_info=True)

    def close_wakeups(self) -> None:
        if self._bell is not None:
            self._bell.close()
            self._bell = None
        if self._listen is not None:
            self._listen.close()
            self._listen = None

    def wait(self, timeout: float | None = None) -> bool:
        """Sleep until a wake-up (doorbell or NOTIFY) or `timeout` (≤ 1 s); True if woken."""
        timeout = self.idle_timeout if timeout is None else min(timeout, 1.0)
        self.open_wakeups()
        sources: list[Any] = [self._bell]
        if self._listen is not None:
            sources.append(self._listen.pgconn.socket)
        try:
            ready, _, _ = select.select(sources, [], [], timeout)
        except InterruptedError:
            return False
        woken = False
        if self._bell in ready:
            woken = self._bell.drain() > 0 or woken
        if self._listen is not None:
            try:
                woken = any(True for _ in self._listen.notifies(timeout=0)) or woken
            except Exception:
                log.warning("LISTEN connection lost", exc_info=True)
                self._listen.close()
                self._listen = None
        return woken

    def run_forever(self, *, once: bool = False, until_idle: bool = False) -> None:
        """The loop: tick; sleep only when no tick did work. Exits 0 on SIGTERM after the current unit."""
        self.open_wakeups()
        self.heartbeat(force=True)
        try:
            while not self.stopping:
                try:
                    did = self.tick()
                except Exception:
                    # A database hiccup or a bug in one unit must not end the
                    # loop; the next pass retries from the stored state.
                    log.exception("controller pass failed")
                    did = False
                    connection.close_if_unusable_or_obsolete()
                self.heartbeat()
                if once or self.stopping:
                    break
                if until_idle and not did and not self.has_active():
                    break
                if not did:
                    self.wait()
        finally:
            self.close_wakeups()
            heartbeat.clear(self.data_dir)



def drop_broken_connection() -> None:
    """After a database error: reconnect on the next query if the connection is broken.

    Not inside a transaction (tests run the ticks in one): closing it there
    would end the caller's transaction, not just this unit's.
    """
    if not connection.in_atomic_block:
        connection.close_if_unusable_or_obsolete()


def _listen_connection():
    """A dedicated autocommit psycopg connection that LISTENs for the do_* NOTIFYs."""
    import psycopg

    db = connection.settings_dict  # the test database's name under pytest, too
    params = {
        "dbname": db.get("NAME") or "", "user": db.get("USER") or "", "password": db.get("PASSWORD") or "",
        "host": db.get("HOST") or "", "port": str(db.get("PORT") or ""),
    }
    conn = psycopg.connect(**{k: v for k, v in params.items() if v}, autocommit=True)
    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
    return conn
