"""S3 LogStore through the minio SDK, with a local spool (DESIGN §7).

Objects are immutable, so a step's log is a series of chunk objects under
`<execution>/<stage>-<step>/`:

    d/00000000, d/00000001, ...   raw bytes, in order (concatenated = the log)
    i/00000000, ...               the sidecar index (index.py) in matching pieces
    manifest.json                 written once at the end: {"size", "chunks", "complete"}

The writer never talks to S3 in `write()`: it appends to a spool file under
`SLIPWAY_DATA_DIR/log-spool/<bucket>/` and an uploader thread ships chunks
(by size, or every `flush_interval` seconds). The spool holds the whole log
until the manifest is uploaded, then it is deleted. So when S3 is
unreachable nothing is lost — the spool stays, and `upload_spooled()` (a
controller tick) ships it later — and a reader on this machine reads the
spool first, which is also what makes live tails fast without Redis.

Spool files per step: `S-M.log`, `S-M.idx`, `S-M.state` (how much is
uploaded), `S-M.done` (the writer closed), `S-M.lock` (flock held while a
writer is open; `upload_spooled()` skips locked spools).
"""
from __future__ import annotations

import fcntl
import io
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from devops.logs.base import PIECE, LogKey, LogStore, LogWriter
from devops.logs.filestore import _write_all, iter_file, open_or_none, scan_lines
from devops.logs.index import IndexRecord, LineIndexer, parse_index, window_in_file
from devops.logs.s3config import S3Config, parse_s3_url

log = logging.getLogger(__name__)

CHUNK_SIZE = 4 << 20       # upload at least this much at once, when there is that much
FLUSH_INTERVAL = 1.0       # ...or whatever is pending after this many seconds
RETRY_MAX = 5.0            # longest wait between failed uploads


def default_spool_root() -> Path:
    """SLIPWAY_DATA_DIR/log-spool, as devops.settings computes it (a runner process has
    DJANGO_SETTINGS_MODULE from its controller; reading settings loads no models)."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        return Path(settings.DATA_DIR) / "log-spool"
    except (ImproperlyConfigured, AttributeError):
        pass
    return Path(os.environ.get("SLIPWAY_DATA_DIR", ".slipway")).resolve() / "log-spool"


def _client(cfg: S3Config):
    import urllib3
    from minio import Minio

    # Short timeouts and few retries: a dead S3 must fall back to the spool
    # quickly instead of stalling a step's log for minutes.
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=2.0, read=20.0),
        retries=urllib3.Retry(total=2, backoff_factor=0.1, status_forcelist=[500, 502, 503, 504]),
        maxsize=8,
    )
    return Minio(
        cfg.endpoint,
        access_key=cfg.access_key,
        secret_key=cfg.secret_key,
        secure=cfg.secure,
        region=cfg.region,
        http_client=http,
    )


class _Spool:
    """Paths of one step's spool files."""

    def __init__(self, root: Path, key: LogKey):
        base = root / key.execution / f"{key.stage}-{key.step}"
        self.key = key
        self.log = base.with_suffix(".log")
        self.idx = base.with_suffix(".idx")
        self.state = base.with_suffix(".state")
        self.done = base.with_suffix(".done")
        self.lock = base.with_suffix(".lock")

    def load_state(self) -> dict:
        try:
            return json.loads(self.state.read_text())
        except (FileNotFoundError, ValueError):
            return {"uploaded": 0, "idx_uploaded": 0, "seq": 0}

    def save_state(self, state: dict) -> None:
        tmp = self.state.with_suffix(".state.tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.state)

    def remove(self) -> None:
        for p in (self.log, self.idx, self.state, self.done):
            p.unlink(missing_ok=True)


class S3LogStore(LogStore):
    def __init__(
        self,
        cfg: S3Config,
        spool_root: str | Path | None = None,
        *,
        chunk_size: int = CHUNK_SIZE,
        flush_interval: float = FLUSH_INTERVAL,
    ):
        self.cfg = cfg
        self.bucket = cfg.bucket
        self.client = _client(cfg)
        self.spool_root = Path(spool_root or default_spool_root()) / cfg.bucket
        self.chunk_size = chunk_size
        self.flush_interval = flush_interval
        self._bucket_ready = False

    @classmethod
    def from_url(cls, url: str, **kwargs) -> S3LogStore:
        return cls(parse_s3_url(url), **kwargs)

    def __repr__(self) -> str:
        return f"S3LogStore({self.cfg!r}, spool={str(self.spool_root)!r})"

    # --- objects -----------------------------------------------------------------
    @staticmethod
    def prefix(key: LogKey) -> str:
        return f"{key.execution}/{key.stage}-{key.step}/"

    def ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        if not self.client.bucket_exists(self.bucket):
            self.client.make_bucket(self.bucket)
        self._bucket_ready = True

    def _put(self, name: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        from minio.error import S3Error

        try:
            self.client.put_object(self.bucket, name, io.BytesIO(data), len(data), content_type=content_type)
        except S3Error as exc:
            if exc.code != "NoSuchBucket":
                raise
            # The bucket went away since ensure_bucket() (S3 restarted without its
            # storage, or it was deleted): a long-lived store (the controller's)
            # must make it again, not fail every upload until it restarts.
            self._bucket_ready = False
            self.ensure_bucket()
            self.client.put_object(self.bucket, name, io.BytesIO(data), len(data), content_type=content_type)

    def _chunks(self, key: LogKey, kind: str = "d") -> list[tuple[str, int]]:
        """[(object name, size)] of a log's chunk objects, in order."""
        from minio.error import S3Error

        objs = self.client.list_objects(self.bucket, prefix=self.prefix(key) + kind + "/", recursive=True)
        try:
            return sorted((o.object_name, o.size) for o in objs)
        except S3Error as exc:
            if exc.code == "NoSuchBucket":
                return []
            raise

    def _manifest(self, key: LogKey) -> dict | None:
        from minio.error import S3Error

        try:
            resp = self.client.get_object(self.bucket, self.prefix(key) + "manifest.json")
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchBucket"):
                return None
            raise
        try:
            return json.loads(resp.read())
        finally:
            resp.close()
            resp.release_conn()

    def _get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        resp = self.client.get_object(self.bucket, name, offset=offset, length=length or 0)
        try:
            return resp.read()
        finally:
            resp.close()
            resp.release_conn()

    # --- spool ---------------------------------------------------------------------
    def spool(self, key: LogKey) -> _Spool:
        return _Spool(self.spool_root, key)

    def upload(self, sp: _Spool, *, final: bool, limit: int | None = None) -> None:
        """Ship what the spool holds beyond its state; with `final`, write the manifest
        and delete the spool. Raises on S3 errors (callers retry later)."""
        self.ensure_bucket()
        state = sp.load_state()
        size = sp.log.stat().st_size if sp.log.exists() else 0
        idx_size = sp.idx.stat().st_size if sp.idx.exists() else 0
        end = size if limit is None else min(size, limit)
        with open(sp.log, "rb") if sp.log.exists() else io.BytesIO() as data_f, \
                open(sp.idx, "rb") if sp.idx.exists() else io.BytesIO() as idx_f:
            while state["uploaded"] < end or state["idx_uploaded"] < idx_size:
                n = min(self.chunk_size, end - state["uploaded"])
                data_f.seek(state["uploaded"])
                data = data_f.read(n)
                idx_f.seek(state["idx_uploaded"])
                # Only whole index records: a torn one waits for the next flush.
                idx = idx_f.read(idx_size - state["idx_uploaded"])
                idx = idx[: idx.rfind(b"\n") + 1]
                seq = f"{state['seq']:08d}"
                if data:
                    self._put(self.prefix(sp.key) + "d/" + seq, data)
                if idx:
                    self._put(self.prefix(sp.key) + "i/" + seq, idx, "text/plain")
                if not data and not idx:
                    break
                state = {
                    "uploaded": state["uploaded"] + len(data),
                    "idx_uploaded": state["idx_uploaded"] + len(idx),
                    "seq": state["seq"] + 1,
                }
                sp.save_state(state)
        if final:
            manifest = {"size": state["uploaded"], "chunks": state["seq"], "complete": True, "finished": time.time()}
            self._put(self.prefix(sp.key) + "manifest.json", json.dumps(manifest).encode(), "application/json")
            sp.remove()

    def restore_spool(self, sp: _Spool) -> None:
        """A log begun on another machine and not finished there (its writer's process died: a
        controller pod rescheduled) goes on here: its uploaded chunks become this machine's spool,
        with the upload state after them, so appending continues the log instead of uploading new
        bytes as chunk 0 over the old ones. Bytes the other machine never uploaded are not there:
        `size()` says where the log stands, and the writer's caller decides what to write
        (the Jenkins engine regenerates them, devops/engines/jenkins/logcopy.py)."""
        tmp = sp.log.with_suffix(".log.tmp")
        try:
            if self._manifest(sp.key) is not None:
                return
            chunks, idx_chunks = self._chunks(sp.key), self._chunks(sp.key, "i")
            if not chunks and not idx_chunks:
                return
            with open(tmp, "wb") as f:
                for name, _size in chunks:
                    f.write(self._get(name))
            with open(sp.idx, "wb") as f:
                for name, _size in idx_chunks:
                    f.write(self._get(name))
            seq = 1 + max(int(name.rsplit("/", 1)[1]) for name, _ in chunks + idx_chunks)
            sp.save_state({"uploaded": tmp.stat().st_size, "idx_uploaded": sp.idx.stat().st_size, "seq": seq})
            os.replace(tmp, sp.log)
        except Exception as exc:  # S3 unreachable: a fresh spool, as before (upload_spooled ships it)
            for p in (tmp, sp.idx, sp.state):
                p.unlink(missing_ok=True)
            log.warning("log %s: cannot restore the chunks already in S3: %s", sp.key.path, exc)

    # --- LogStore ------------------------------------------------------------------
    def writer(self, key: LogKey) -> LogWriter:
        return S3LogWriter(self, key)

    def read(self, key: LogKey, offset: int = 0, length: int | None = None) -> bytes:
        sp = self.spool(key)
        try:
            # Open first: once open, the spool cannot vanish under us (unlink
            # after upload keeps an open file readable).
            with open(sp.log, "rb") as f:
                f.seek(offset)
                return f.read() if length is None else f.read(length)
        except FileNotFoundError:
            pass
        out = bytearray()
        pos = 0
        for name, size in self._chunks(key):
            if length is not None and len(out) >= length:
                break
            if pos + size > offset:
                start = max(0, offset - pos)
                want = size - start if length is None else min(size - start, length - len(out))
                out += self._get(name, start, want)
            pos += size
        return bytes(out)

    def iter_bytes(self, key: LogKey, start: int, end: int, piece: int = PIECE) -> Iterator[bytes]:
        # The spool when this machine has it (one open file); else one listing of
        # the chunk objects and one streamed GET per chunk, `piece` bytes at a time.
        f = open_or_none(self.spool(key).log)
        if f is not None:
            yield from iter_file(f, start, end, piece)
            return
        pos = 0
        for name, size in self._chunks(key):
            if pos >= end:
                return
            if pos + size > start:
                first = max(0, start - pos)
                want = min(size, end - pos) - first
                resp = self.client.get_object(self.bucket, name, offset=first, length=want)
                try:
                    yield from resp.stream(piece)
                finally:
                    resp.close()
                    resp.release_conn()
            pos += size

    def size(self, key: LogKey) -> int:
        try:
            return self.spool(key).log.stat().st_size
        except FileNotFoundError:
            pass
        manifest = self._manifest(key)
        if manifest is not None:
            return int(manifest["size"])
        return sum(size for _, size in self._chunks(key))

    def is_complete(self, key: LogKey) -> bool:
        sp = self.spool(key)
        if sp.log.exists():
            return sp.done.exists()
        return self._manifest(key) is not None

    def index(self, key: LogKey) -> list[IndexRecord]:
        try:
            return parse_index(self.spool(key).idx.read_bytes())
        except FileNotFoundError:
            pass
        return parse_index(b"".join(self._get(name) for name, _ in self._chunks(key, "i")))

    def index_window(self, key: LogKey, first: int, last: int) -> list[IndexRecord]:
        idx = self.spool(key).idx
        if idx.exists():
            return window_in_file(idx, first, last)
        # Uploaded: the index objects are read whole (one per upload, ~1600 for a
        # 100 MiB log written in 64 KiB pieces; more for a slow chatty step).
        return super().index_window(key, first, last)

    def keys(self, execution: str) -> list[LogKey]:
        found: set[LogKey] = set()
        for p in (self.spool_root / execution).glob("*.log"):
            stage, _, step = p.stem.partition("-")
            if stage.isdigit() and step.isdigit():
                found.add(LogKey(execution, int(stage), int(step)))
        try:
            for o in self.client.list_objects(self.bucket, prefix=f"{execution}/", recursive=False):
                stage, _, step = o.object_name[len(execution) + 1:].strip("/").partition("-")
                if stage.isdigit() and step.isdigit():
                    found.add(LogKey(execution, int(stage), int(step)))
        except Exception as exc:
            log.warning("log store: cannot list %s in S3: %s", execution, exc)
        return sorted(found)

    def delete_execution(self, execution: str) -> None:
        from minio.deleteobjects import DeleteObject

        shutil.rmtree(self.spool_root / execution, ignore_errors=True)
        names = [o.object_name for o in self.client.list_objects(self.bucket, prefix=f"{execution}/", recursive=True)]
        for err in self.client.remove_objects(self.bucket, [DeleteObject(n) for n in names]):
            log.warning("log store: could not delete %s: %s", err.name, err.message)

    def upload_spooled(self) -> int:
        """Ship spools no writer holds (closed, or their process died); finalise them.

        Returns how many logs were finalised. S3 errors are logged and the
        spool is kept for the next call.
        """
        done = 0
        for log_path in sorted(self.spool_root.glob("*/*.log")):
            stage, _, step = log_path.stem.partition("-")
            if not (stage.isdigit() and step.isdigit()):
                continue
            sp = self.spool(LogKey(log_path.parent.name, int(stage), int(step)))
            with open(sp.lock, "a+") as lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live writer owns it
                if not sp.log.exists():
                    continue  # finalised meanwhile
                try:
                    self.upload(sp, final=True)
                    done += 1
                except Exception as exc:
                    log.warning("log store: %s still spooled, S3 upload failed: %s", sp.key, exc)
        return done


class S3LogWriter(LogWriter):
    """Appends to the spool; an uploader thread ships chunks. Thread-safe close()."""

    def __init__(self, store: S3LogStore, key: LogKey):
        self.store = store
        self.key = key
        self.sp = sp = store.spool(key)
        sp.log.parent.mkdir(parents=True, exist_ok=True)
        self._lock_f = open(sp.lock, "a+")
        # Blocks only while upload_spooled() finishes an older spool of this key.
        fcntl.flock(self._lock_f, fcntl.LOCK_EX)
        sp.done.unlink(missing_ok=True)
        if not sp.log.exists():
            store.restore_spool(sp)
        self._indexer = LineIndexer()
        if sp.log.exists() and sp.log.stat().st_size:
            self._indexer.resume(*scan_lines(sp.log))
        self._fd = os.open(sp.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        self._idx = os.open(sp.idx, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        self._wake = threading.Event()
        self._woken_at = self._indexer.offset
        self._closing = False
        self._closed = False
        self.upload_errors = 0
        self._thread = threading.Thread(target=self._uploader, name=f"log-upload-{key.path}", daemon=True)
        self._thread.start()

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
        if self._indexer.offset - self._woken_at >= self.store.chunk_size:
            self._woken_at = self._indexer.offset
            self._wake.set()

    def _uploader(self) -> None:
        delay = self.store.flush_interval
        while not self._closing:
            self._wake.wait(delay)
            self._wake.clear()
            if self._closing:
                break
            try:
                # Whole chunks only while the step runs, unless the interval passed.
                self.store.upload(self.sp, final=False)
                delay = self.store.flush_interval
            except Exception as exc:
                self.upload_errors += 1
                log.warning("log %s: S3 upload failed (spooled, will retry): %s", self.key.path, exc)
                delay = min(RETRY_MAX, max(delay * 2, 0.5))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._closing = True
        self._wake.set()
        self._thread.join()
        os.close(self._fd)
        os.close(self._idx)
        self.sp.done.touch()
        try:
            self.store.upload(self.sp, final=True)
        except Exception as exc:
            self.upload_errors += 1
            log.warning("log %s: final S3 upload failed; spooled for upload_spooled(): %s", self.key.path, exc)
        finally:
            # The (empty) lock file stays: unlinking it would let a waiting
            # opener lock a dead inode while a new one is created.
            fcntl.flock(self._lock_f, fcntl.LOCK_UN)
            self._lock_f.close()
