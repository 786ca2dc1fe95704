"""Filesystem LogStore: per step `S-M.log` (raw bytes), `S-M.idx` (line
timestamps, see index.py) and a `S-M.done` marker once finalised.

Writes are unbuffered appends, so a reader polling the file size (the live
consumer without Redis) sees every byte the moment `write()` returns.
"""
from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from devops.logs.base import PIECE, LogKey, LogStore, LogWriter
from devops.logs.index import IndexRecord, LineIndexer, parse_index, window_in_file


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def scan_lines(path: Path) -> tuple[int, int, bool]:
    """(size, newline count, ends with newline) of an existing file, read in 1 MiB pieces."""
    size = newlines = 0
    last = b"\n"
    try:
        with open(path, "rb") as f:
            while piece := f.read(1 << 20):
                size += len(piece)
                newlines += piece.count(b"\n")
                last = piece[-1:]
    except FileNotFoundError:
        pass
    return size, newlines, last == b"\n"


def open_or_none(path: Path):
    """The file opened for reading, or None. Opened once for a whole download, so a
    log deleted (or a spool uploaded and removed) meanwhile stays readable."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        return None


def iter_file(f, start: int, end: int, piece: int) -> Iterator[bytes]:
    """Bytes `start`..`end` of the open file `f` in pieces of at most `piece`; closes `f`."""
    with f:
        f.seek(start)
        pos = start
        while pos < end and (data := f.read(min(piece, end - pos))):
            pos += len(data)
            yield data


class FileLogWriter(LogWriter):
    """Appends to `S-M.log` and its sidecar; `close()` writes the `.done` marker."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._indexer = LineIndexer()
        if path.exists() and path.stat().st_size:
            self._indexer.resume(*scan_lines(path))
        # Unbuffered append: every write is visible to tailing readers at once.
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        self._idx = os.open(path.with_suffix(".idx"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        self._closed = False

    @property
    def size(self) -> int:
        return self._indexer.offset

    def write(self, data: bytes) -> None:
        if not data:
            return
        record = self._indexer.feed(data, time.time())
        _write_all(self._fd, data)
        if record is not None:
            _write_all(self._idx, record.encode())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        os.close(self._fd)
        os.close(self._idx)
        self._path.with_suffix(".done").touch()


class FileLogStore(LogStore):
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"FileLogStore({str(self.root)!r})"

    def _path(self, key: LogKey) -> Path:
        return self.root / key.path

    def writer(self, key: LogKey) -> LogWriter:
        return FileLogWriter(self._path(key))

    def read(self, key: LogKey, offset: int = 0, length: int | None = None) -> bytes:
        try:
            with open(self._path(key), "rb") as f:
                f.seek(offset)
                return f.read() if length is None else f.read(length)
        except FileNotFoundError:
            return b""

    def iter_bytes(self, key: LogKey, start: int, end: int, piece: int = PIECE) -> Iterator[bytes]:
        f = open_or_none(self._path(key))
        return iter_file(f, start, end, piece) if f is not None else iter(())

    def size(self, key: LogKey) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return 0

    def is_complete(self, key: LogKey) -> bool:
        return self._path(key).with_suffix(".done").exists()

    def index(self, key: LogKey) -> list[IndexRecord]:
        try:
            return parse_index(self._path(key).with_suffix(".idx").read_bytes())
        except FileNotFoundError:
            return []

    def index_window(self, key: LogKey, first: int, last: int) -> list[IndexRecord]:
        return window_in_file(self._path(key).with_suffix(".idx"), first, last)

    def keys(self, execution: str) -> list[LogKey]:
        out = []
        for p in (self.root / execution).glob("*.log"):
            stage, _, step = p.stem.partition("-")
            if stage.isdigit() and step.isdigit():
                out.append(LogKey(execution, int(stage), int(step)))
        return sorted(out)

    def delete_execution(self, execution: str) -> None:
        shutil.rmtree(self.root / execution, ignore_errors=True)
