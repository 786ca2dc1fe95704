"""Filesystem LogStore: one file per step plus a `.done` marker when finalised."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from devops.logs.base import LogKey, LogStore, LogWriter


class FileLogWriter(LogWriter):
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        # Unbuffered append: every write is visible to tailing readers at once.
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        self._closed = False

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        os.close(self._fd)
        self._path.with_suffix(".done").touch()


class FileLogStore(LogStore):
    def __init__(self, root: str | Path):
        self.root = Path(root)

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

    def size(self, key: LogKey) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return 0

    def is_complete(self, key: LogKey) -> bool:
        return self._path(key).with_suffix(".done").exists()

    def keys(self, execution: str) -> list[LogKey]:
        out = []
        for p in (self.root / execution).glob("*.log"):
            stage, _, step = p.stem.partition("-")
            if stage.isdigit() and step.isdigit():
                out.append(LogKey(execution, int(stage), int(step)))
        return sorted(out)

    def delete_execution(self, execution: str) -> None:
        shutil.rmtree(self.root / execution, ignore_errors=True)
