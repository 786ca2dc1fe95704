"""Controller heartbeats: `<data_dir>/controllers/<host>-<pid>.json`. No Django here.

A running controller rewrites its file at least once a second
(`beat`); `running_controllers` lists the fresh ones whose process is still
alive, so `pipeline run` can tell whether to run the controller inline or
wait for the one that runs.
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import psutil

STALE_AFTER = 5.0  # seconds without a beat: that controller is gone


def _dir(data_dir: str | os.PathLike) -> Path:
    return Path(data_dir) / "controllers"


def _path(data_dir: str | os.PathLike) -> Path:
    return _dir(data_dir) / f"{socket.gethostname()}-{os.getpid()}.json"


def beat(data_dir: str | os.PathLike, **extra) -> None:
    path = _path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "time": time.time(), **extra}))
    os.replace(tmp, path)  # readers never see half a file


def clear(data_dir: str | os.PathLike) -> None:
    try:
        _path(data_dir).unlink()
    except FileNotFoundError:
        pass


def running_controllers(data_dir: str | os.PathLike, *, exclude_self: bool = True) -> list[dict]:
    """Heartbeats fresher than STALE_AFTER whose process lives (same host)."""
    out = []
    directory = _dir(data_dir)
    if not directory.is_dir():
        return out
    now = time.time()
    host = socket.gethostname()
    for path in directory.glob("*.json"):
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if exclude_self and info.get("pid") == os.getpid() and info.get("host") == host:
            continue
        if now - float(info.get("time", 0)) > STALE_AFTER:
            continue
        if info.get("host") == host and not psutil.pid_exists(int(info.get("pid", 0))):
            continue
        out.append(info)
    return out
