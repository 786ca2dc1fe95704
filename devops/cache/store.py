"""Cache directories on disk: generations, locking, metadata, LRU eviction (DESIGN §6).

Layout under the cache root (`devops-cache-dir`, default SLIPWAY_DATA_DIR/cache)::

    <root>/<project>/<pipeline>/<slug>/      one entry per (pipeline, cache path)
        .lock                                flock: held exclusively for every change
        meta.json                            path, generation, size, last use, hits, misses
        gen-000007/                          the published generation (never changed again)
    <root>/<project>/.work/<slug>-<pid>-<rand>/  a running step's private copy (kept
                                             outside the entry so `clear` never pulls it
                                             from under a running step)
    <root>/<project>/.trash/                 directories being deleted (outside any lock)
    <root>/<project>/.evict.lock             one evictor per project at a time

Consistency model (docs/architecture.md, "Cache consistency"): copy-on-restore
generations. A step gets a *private copy* of the latest published generation
(reflink where the filesystem offers it, a plain copy otherwise) and works
in it; when the step succeeds the copy is renamed into place as a new
generation (an atomic `rename` on one filesystem) and the previous generation
is dropped. Two concurrent runs each publish a complete tree; the last one to
finish wins. A failed or killed step never publishes, so a published
generation is always the output of a successful step. Nothing here imports
Django: the runner process uses it directly, the API/CLI through `index`.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

GEN_PREFIX = "gen-"
META = "meta.json"
LOCK = ".lock"
TRASH = ".trash"
WORK = ".work"

def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def slug_for(path: str) -> str:
    """A stable, readable directory name for a cache path: `root_.ccache-1a2b3c4d`."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", path.strip("/")).strip("_")[:60] or "root"
    return f"{readable}-{hashlib.sha256(path.encode()).hexdigest()[:8]}"


def _safe_component(name: str) -> str:
    if not name or "/" in name or name in {".", ".."} or "\0" in name:
        raise ValueError(f"bad cache key component: {name!r}")
    return name


@dataclass
class Meta:
    path: str
    pipeline: str
    generation: int = 0          # 0: nothing published
    size: int = 0                # bytes of the published generation
    last_used: float = 0.0       # unix time of the last restore or save
    saved: float = 0.0
    hits: int = 0
    misses: int = 0


@dataclass(frozen=True)
class CacheInfo:
    """One entry as the API/CLI show it."""

    project: str
    pipeline: str
    path: str
    key: str
    size: int
    last_used: float
    saved: float
    hits: int
    misses: int
    generation: int


def dir_size(root: Path) -> int:
    """Bytes used by the files under `root` (hard links counted once, symlinks not followed)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + dirnames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512 if st.st_blocks else st.st_size
    return total


def copy_tree(src: Path, dst: Path) -> None:
    """Copy `src` to the new directory `dst`, keeping modes, owners, times and links.

    `cp --reflink=auto` shares blocks on btrfs/XFS (an O(1)-ish copy that is
    still private: writes never reach the source) and falls back to a plain
    copy elsewhere. Hard links would be faster but are NOT private: a tool
    that rewrites a file in place (a compiler writing an .o) would change the
    published generation under every other run.
    """
    subprocess.run(["cp", "-a", "--reflink=auto", str(src), str(dst)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class CacheEntry:
    """One (project, pipeline, path) cache. Methods are safe across processes."""

    def __init__(self, root: Path, project: str, pipeline: str, path: str):
        self.root = Path(root)
        self.project = _safe_component(project)
        self.pipeline = _safe_component(pipeline)
        self.path = path
        self.key = slug_for(path)
        self.dir = self.root / self.project / self.pipeline / self.key

    # --- locking -------------------------------------------------------------
    @contextmanager
    def locked(self, *, blocking: bool = True) -> Iterator[bool]:
        """Hold the entry's exclusive lock. Yields False when non-blocking and busy.

        The lock file can be removed by `clear`/eviction (which rename the whole
        entry away while holding it), so after acquiring we check that the file
        we hold is still the one at the path, and retry if not.
        """
        while True:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
                except OSError as e:
                    if e.errno in (errno.EAGAIN, errno.EACCES):
                        yield False
                        return
                    raise
                try:
                    same = os.fstat(fd).st_ino == os.stat(self.dir / LOCK).st_ino
                except FileNotFoundError:
                    same = False
                if not same:
                    continue  # the entry was cleared while we waited: lock the new one
                yield True
                return
            finally:
                os.close(fd)

    # --- metadata ------------------------------------------------------------
    def read_meta(self) -> Meta:
        try:
            data = json.loads((self.dir / META).read_text())
            return Meta(**{k: data[k] for k in Meta.__dataclass_fields__ if k in data})
        except (FileNotFoundError, ValueError, TypeError):
            return Meta(path=self.path, pipeline=self.pipeline)

    def _write_meta(self, meta: Meta) -> None:
        tmp = self.dir / f".meta-{secrets.token_hex(4)}"
        tmp.write_text(json.dumps(asdict(meta)))
        os.replace(tmp, self.dir / META)  # readers never see half a file

    def _gen_dir(self, generation: int) -> Path:
        return self.dir / f"{GEN_PREFIX}{generation:06d}"

    # --- restore / publish ---------------------------------------------------
    def restore(self) -> tuple[Path, bool]:
        """A private working copy of the latest generation: (directory, hit).

        On a miss the directory is empty. The caller owns it until it calls
        `publish` or `discard`.
        """
        workroot = self.root / self.project / WORK
        workroot.mkdir(parents=True, exist_ok=True)
        _sweep_dead_work(workroot)
        work = workroot / f"{self.key}-{os.getpid()}-{secrets.token_hex(4)}"
        with self.locked():
            meta = self.read_meta()
            src = self._gen_dir(meta.generation)
            hit = meta.generation > 0 and src.is_dir()
            if hit:
                # Copy under the lock: publishing drops the old generation,
                # and must not do so while we read it.
                copy_tree(src, work)
                meta.hits += 1
            else:
                work.mkdir()
                meta.misses += 1
            meta.last_used = time.time()
            self._write_meta(meta)
        return work, hit

    def publish(self, work: Path) -> Meta:
        """Make `work` the latest generation (atomic rename) and drop the previous one.

        Concurrent publishers of one entry each install a complete tree; the
        last one wins. Entry cleared meanwhile: this starts it again.
        """
        size = dir_size(work)
        with self.locked():
            meta = self.read_meta()
            old = self._gen_dir(meta.generation) if meta.generation else None
            meta.generation += 1
            os.rename(work, self._gen_dir(meta.generation))
            meta.size = size
            meta.saved = meta.last_used = time.time()
            self._write_meta(meta)
            if old is not None and old.exists():
                trash = self._trash_dir()
                os.rename(old, trash / f"{self.key}-{secrets.token_hex(4)}")
        _empty_trash(self.root / self.project)
        return meta

    def discard(self, work: Path) -> None:
        shutil.rmtree(work, ignore_errors=True)

    def remove(self, *, blocking: bool = True) -> bool:
        """Delete the whole entry (clear / eviction). False when busy and non-blocking."""
        if not self.dir.exists():
            return True
        with self.locked(blocking=blocking) as got:
            if not got:
                return False
            os.rename(self.dir, self._trash_dir() / f"{self.key}-{secrets.token_hex(4)}")
        _empty_trash(self.root / self.project)
        return True

    def _trash_dir(self) -> Path:
        trash = self.root / self.project / TRASH
        trash.mkdir(parents=True, exist_ok=True)
        return trash



def _sweep_dead_work(workroot: Path) -> None:
    """Remove working copies left by runners that died (kill -9): their pid is gone."""
    for child in workroot.iterdir():
        try:
            pid = int(child.name.rsplit("-", 2)[1])
        except (ValueError, IndexError):
            continue
        if not psutil.pid_exists(pid):
            shutil.rmtree(child, ignore_errors=True)


def _empty_trash(project_dir: Path) -> None:
    trash = project_dir / TRASH
    if trash.is_dir():
        for child in trash.iterdir():
            shutil.rmtree(child, ignore_errors=True)


# --- listing, clearing, eviction (per project) ---------------------------------

def project_dir(root: Path, project: str) -> Path:
    return Path(root) / _safe_component(project)


def entries(root: Path, project: str, pipeline: str | None = None) -> list[CacheEntry]:
    """The cache entries of a project (optionally one pipeline), found on disk."""
    pdir = project_dir(root, project)
    found: list[CacheEntry] = []
    if not pdir.is_dir():
        return found
    pipelines = [pdir / pipeline] if pipeline else sorted(p for p in pdir.iterdir() if p.is_dir())
    for pl in pipelines:
        if pl.name.startswith(".") or not pl.is_dir():
            continue
        for edir in sorted(pl.iterdir()):
            meta_file = edir / META
            if not meta_file.is_file():
                continue
            try:
                path = json.loads(meta_file.read_text())["path"]
            except (ValueError, KeyError):
                continue
            found.append(CacheEntry(root, project, pl.name, path))
    return found


def list_caches(root: Path, project: str, pipeline: str | None = None) -> list[CacheInfo]:
    out = []
    for e in entries(root, project, pipeline):
        m = e.read_meta()
        out.append(CacheInfo(project=project, pipeline=e.pipeline, path=m.path, key=e.key,
                             size=m.size, last_used=m.last_used, saved=m.saved, hits=m.hits,
                             misses=m.misses, generation=m.generation))
    return out


def clear_caches(root: Path, project: str, pipeline: str | None = None, key: str | None = None) -> int:
    """Delete caches (waiting for running restores/saves); returns how many were removed."""
    n = 0
    for e in entries(root, project, pipeline):
        if key is not None and e.key != key:
            continue
        if e.remove():
            n += 1
    return n


def enforce_cap(root: Path, project: str, cap: int, *, keep: CacheEntry | None = None) -> list[CacheInfo]:
    """Evict least-recently-used caches of the project until it fits in `cap` bytes.

    `keep` (the cache just saved) goes last. Busy entries (a step is
    restoring or saving them right now) are skipped this time. Returns the
    evicted caches.
    """
    pdir = project_dir(root, project)
    pdir.mkdir(parents=True, exist_ok=True)
    fd = os.open(pdir / ".evict.lock", os.O_RDWR | os.O_CREAT, 0o644)
    evicted: list[CacheInfo] = []
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        infos = list_caches(root, project)
        total = sum(i.size for i in infos)
        if total <= cap:
            return evicted
        keep_id = (keep.pipeline, keep.key) if keep else None
        order = sorted(infos, key=lambda i: ((i.pipeline, i.key) == keep_id, i.last_used))
        for info in order:
            if total <= cap:
                break
            if CacheEntry(root, project, info.pipeline, info.path).remove(blocking=False):
                total -= info.size
                evicted.append(info)
    finally:
        os.close(fd)
    return evicted
