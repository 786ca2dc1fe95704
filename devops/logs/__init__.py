"""Step logs: the LogStore interface and its backends (DESIGN §7)."""
from __future__ import annotations

from functools import lru_cache

from devops.logs.base import LogKey, LogStore, LogWriter

__all__ = ["LogKey", "LogStore", "LogWriter", "get_log_store", "log_store_from_url"]


def log_store_from_url(url: str) -> LogStore:
    if url.startswith("file://"):
        from devops.logs.filestore import FileLogStore

        return FileLogStore(url[len("file://"):])
    if url.startswith("s3://"):
        from devops.logs.s3store import S3LogStore  # added by the logs issue

        return S3LogStore.from_url(url)
    raise ValueError(f"unsupported log store URL {url!r} (file:// or s3://)")


@lru_cache(maxsize=1)
def get_log_store() -> LogStore:
    from django.conf import settings

    return log_store_from_url(settings.SLIPWAY_LOG_STORE)


def open_step_writer(store: LogStore, key: LogKey, *, mask: tuple[str, ...] = (), cap: int | None = None) -> LogWriter:
    """The one way a runner opens a step's log.

    Every byte a step writes goes through here, so masking of secret values,
    the per-step size cap and live notification are applied in one place
    (the logs package owns them; callers only pass the values to mask and
    the cap in bytes).
    """
    return store.writer(key)
