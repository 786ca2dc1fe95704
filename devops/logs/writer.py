"""The step log writer: masking, the size cap, live publishing, and never failing the step.

`open_step_writer()` (devops.logs) wraps a backend writer in `StepLogWriter`:

    step bytes -> Masker (secrets -> ***) -> cap -> backend (file / s3 spool)
                                                 -> live publisher (Redis, if configured)

Contract:
- `write()` and `close()` never raise. A storage error is logged, kept in
  `errors`, and the step goes on: its result never depends on its log.
- No byte of a secret value (>= 4 chars) reaches the store or the live
  stream, however the value is split across writes.
- Past `cap` bytes the log says so in plain words, keeps counting what it
  drops, and on close says how many bytes were dropped.
- Memory is flat: the masker holds at most (longest secret - 1) bytes and
  nothing else is buffered here.
- Thread-safe: stdout and stderr pumps may share one writer.
- Resumable (the Jenkins engine's log copy after a controller restart):
  `state()` is what a later writer needs to go on where this one stood
  (`resume=`), and `skip=N` says that the first N bytes this writer would
  store are already in the log (written after the state was taken): they are
  counted in `size` but neither stored nor published again.
"""
from __future__ import annotations

import logging
import threading

from devops.logs.base import LogKey, LogStore, LogWriter
from devops.logs.masking import Masker

log = logging.getLogger(__name__)

DEFAULT_CAP = 100 * 1024 * 1024  # the project setting log-size-cap's default, 100Mi


def _also_human(n: int) -> str:
    """` (1.5 MiB)` after a byte count, or nothing when the count is already small."""
    return f" ({_human(n)})" if n >= 1024 else ""


def _human(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}".replace(".0 ", " ")
    return f"{n} bytes"


class StepLogWriter(LogWriter):
    def __init__(
        self,
        store: LogStore,
        key: LogKey,
        *,
        mask: tuple[str, ...] = (),
        cap: int | None = None,
        publisher=None,
        resume: dict | None = None,
        skip: int = 0,
    ):
        self.key = key
        self.cap = DEFAULT_CAP if cap is None else max(0, int(cap))
        self.masker = Masker(mask)
        self.publisher = publisher
        self.errors: list[str] = []
        self.content = 0        # step bytes kept (after masking), <= cap
        self.dropped = 0        # step bytes dropped past the cap
        self.truncated = False
        self.size = 0           # bytes in the log, notices included
        if resume:
            self.size = int(resume["size"])
            self.content = int(resume["content"])
            self.dropped = int(resume["dropped"])
            self.truncated = bool(resume["truncated"])
        self._skip = max(0, int(skip))
        self._lock = threading.Lock()
        self._closed = False
        self._inner: LogWriter | None = None
        try:
            self._inner = store.writer(key)
        except Exception as exc:
            self._error("open", exc)

    # --- public ------------------------------------------------------------------
    @property
    def held(self) -> int:
        """Bytes written but not stored yet (the masker's undecided tail); 0 after a write ending in a newline."""
        return self.masker.held

    def state(self) -> dict:
        """What a later writer of this log needs (`resume=`) to continue exactly where this one stands,
        provided it is fed again from the first byte not yet stored (see `held`)."""
        with self._lock:
            return {"size": self.size, "content": self.content, "dropped": self.dropped,
                    "truncated": self.truncated}

    def write(self, data: bytes) -> None:
        if not data:
            return
        with self._lock:
            if self._closed:
                return
            try:
                self._capped(self.masker.feed(bytes(data)))
            except Exception as exc:
                self._error("write", exc)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._capped(self.masker.close())
                if self.truncated:
                    self._store(
                        f"[slipway] log truncated: {self.dropped} bytes{_also_human(self.dropped)} "
                        f"were dropped after the cap of {self.cap} bytes\n".encode()
                    )
            except Exception as exc:
                self._error("close", exc)
            if self._inner is not None:
                try:
                    self._inner.close()
                except Exception as exc:
                    self._error("close", exc)
            if self.publisher is not None:
                try:
                    self.publisher.end(self.key.execution, self.key.stage, self.key.step, self.size)
                    self.publisher.flush(timeout=2.0)
                except Exception as exc:
                    self._error("publish", exc)

    # --- internals -----------------------------------------------------------------
    def _capped(self, data: bytes) -> None:
        if not data:
            return
        if self.truncated:
            self.dropped += len(data)
            return
        room = self.cap - self.content
        if len(data) <= room:
            self.content += len(data)
            self._store(data)
            return
        keep = data[:room]
        self.content += len(keep)
        self.dropped += len(data) - len(keep)
        self.truncated = True
        self._store(keep)
        lead = b"" if (keep.endswith(b"\n") or (not keep and self.size == 0)) else b"\n"
        self._store(
            lead + f"[slipway] log truncated: this step's log reached its cap of {self.cap} bytes "
            f"({_human(self.cap)}, project setting log-size-cap); further output is dropped "
            "and counted\n".encode()
        )

    def _store(self, data: bytes) -> None:
        if not data:
            return
        offset = self.size
        self.size += len(data)
        if self._skip:  # already in the log: an earlier writer stored these bytes
            n = min(self._skip, len(data))
            self._skip -= n
            offset, data = offset + n, data[n:]
            if not data:
                return
        if self._inner is not None:
            try:
                self._inner.write(data)
            except Exception as exc:
                self._error("store", exc)
        if self.publisher is not None:
            try:
                self.publisher.publish(self.key.execution, self.key.stage, self.key.step, offset, data)
            except Exception as exc:
                self._error("publish", exc)

    def _error(self, what: str, exc: BaseException) -> None:
        msg = f"{what}: {type(exc).__name__}: {exc}"
        if len(self.errors) < 20:
            self.errors.append(msg)
        # Warn once per kind of failure; a dead disk would otherwise log per line.
        level = logging.WARNING if sum(e.startswith(what) for e in self.errors) <= 1 else logging.DEBUG
        log.log(level, "step log %s: %s (the step goes on)", self.key.path, msg)
