"""Step logs: the LogStore interface and its backends (DESIGN §7).

- `get_log_store()`       the configured store (settings.SLIPWAY_LOG_STORE). For s3
                          it also reads this machine's spool, so a reader finds a
                          log wherever it is (spool or bucket).
- `open_step_writer()`    the one way a runner opens a step's log (mask, cap, live).
- `upload_spooled()`      ship logs spooled while S3 was unreachable (controller tick).

Django-free core (the runner imports it): its HTTP and WebSocket sides are
`devops.api.views_logs` and `devops.api.consumers`.
"""
from __future__ import annotations

from functools import lru_cache

from devops.logs.base import LogKey, LogStore, LogWriter

__all__ = [
    "LogKey",
    "LogStore",
    "LogWriter",
    "get_log_store",
    "log_store_from_url",
    "open_step_writer",
    "upload_spooled",
]


def log_store_from_url(url: str) -> LogStore:
    if url.startswith("file://"):
        from devops.logs.filestore import FileLogStore

        return FileLogStore(url[len("file://"):])
    if url.startswith("s3://"):
        from devops.logs.s3store import S3LogStore

        return S3LogStore.from_url(url)
    raise ValueError(f"unsupported log store URL {url!r} (file:// or s3://)")


@lru_cache(maxsize=1)
def get_log_store() -> LogStore:
    from django.conf import settings

    return log_store_from_url(settings.SLIPWAY_LOG_STORE)


def open_step_writer(store: LogStore, key: LogKey, *, mask: tuple[str, ...] = (), cap: int | None = None,
                     resume: dict | None = None, skip: int = 0) -> LogWriter:
    """The one way a runner opens a step's log.

    Every byte a step writes goes through here, so masking of secret values,
    the per-step size cap and live notification are applied in one place
    (the logs package owns them; callers only pass the values to mask and
    the cap in bytes — None means the 100 MiB default). The returned writer
    never raises from write()/close(): log trouble never changes a step's
    result (see devops.logs.writer). Its `size` is the log's length in bytes.
    `resume` / `skip` continue a log an earlier writer left (StepLogWriter.state()).
    """
    from devops.logs.live import get_publisher
    from devops.logs.writer import StepLogWriter

    try:
        publisher = get_publisher()
    except Exception:
        publisher = None
    return StepLogWriter(store, key, mask=tuple(mask), cap=cap, publisher=publisher, resume=resume, skip=skip)


def upload_spooled(store: LogStore | None = None) -> int:
    """Upload step logs spooled on this machine while S3 was unreachable.

    Idempotent; returns how many logs it finalised ("did work", for a
    controller `tick_*`). A file store has nothing to upload: 0.
    """
    from devops.logs.s3store import S3LogStore

    store = store or get_log_store()
    if isinstance(store, S3LogStore):
        return store.upload_spooled()
    return 0
