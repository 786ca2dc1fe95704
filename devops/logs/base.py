"""The LogStore contract (DESIGN §7).

A log is addressed by (execution name, stage index, step index); stage
indices count the implicit Clone stage. The raw log is byte-exact what the
step wrote. Writers append; readers read from an offset while the writer is
still appending (live tail). A writer is finalised once when its step ends.

Backends: file (embedded default) and s3 (minio SDK), chosen by
settings.SLIPWAY_LOG_STORE via `devops.logs.get_log_store()`.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

PIECE = 1 << 20  # what iter_bytes() holds at once, at most


@dataclass(frozen=True, order=True)
class LogKey:
    execution: str
    stage: int
    step: int

    @property
    def path(self) -> str:
        return f"{self.execution}/{self.stage}-{self.step}.log"


class LogWriter:
    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finalise the log (flush, upload the last chunk, mark complete). Idempotent."""
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class LogStore:
    def writer(self, key: LogKey) -> LogWriter:
        raise NotImplementedError

    def read(self, key: LogKey, offset: int = 0, length: int | None = None) -> bytes:
        """Bytes from `offset`; b"" when there is none (yet)."""
        raise NotImplementedError

    def iter_bytes(self, key: LogKey, start: int, end: int, piece: int = PIECE) -> Iterator[bytes]:
        """Bytes `start`..`end` (exclusive) in pieces of at most `piece` bytes, for
        streaming a download: memory stays one piece, whatever the log's size.
        Stops early when the log is shorter. Backends may read more cleverly
        (one open file, one object listing) than this default."""
        pos = start
        while pos < end:
            data = self.read(key, pos, min(piece, end - pos))
            if not data:
                return
            pos += len(data)
            yield data

    def size(self, key: LogKey) -> int:
        raise NotImplementedError

    def is_complete(self, key: LogKey) -> bool:
        """True once the writer was closed."""
        raise NotImplementedError

    def keys(self, execution: str) -> list[LogKey]:
        """Every step log of an execution, in (stage, step) order."""
        raise NotImplementedError

    def index(self, key: LogKey) -> list:
        """The per-line timestamp records kept beside the log (devops.logs.index.IndexRecord)."""
        return []

    def index_window(self, key: LogKey, first: int, last: int) -> list:
        """The index records a page of lines `first`..`last` needs (devops.logs.index.window):
        the last at or before `first`, then those up to `last`. Backends with the
        sidecar in a file bisect it instead of reading it whole."""
        from devops.logs.index import window

        return window(self.index(key), first, last)

    def delete_execution(self, execution: str) -> None:
        raise NotImplementedError
