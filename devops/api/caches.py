"""The Django side of caches: which directory holds a project's caches, list and clear.

Metadata lives beside the caches on disk (one meta.json per cache, see
store.py), written by runner processes without a database; this module
reads it for the API and the CLI.
"""
from __future__ import annotations

from datetime import UTC
from pathlib import Path

from django.conf import settings

from devops.cache import store
from devops.cache.stepcache import cache_root
from devops.models import Project


def project_cache_root(project: Project) -> Path:
    """The cache root the runner uses for this project (`devops-cache-dir`, else DATA_DIR/cache)."""
    return cache_root({"devops-cache-dir": project.setting("devops-cache-dir")}, Path(settings.DATA_DIR))


def list_caches(project: Project, pipeline: str | None = None) -> list[store.CacheInfo]:
    infos = store.list_caches(project_cache_root(project), project.id, pipeline)
    return sorted(infos, key=lambda i: i.last_used, reverse=True)


def clear_caches(project: Project, pipeline: str | None = None, key: str | None = None) -> int:
    return store.clear_caches(project_cache_root(project), project.id, pipeline, key)


def cache_json(info: store.CacheInfo) -> dict:
    from datetime import datetime

    def iso(ts: float) -> str | None:
        return datetime.fromtimestamp(ts, tz=UTC).isoformat() if ts else None

    return {
        "pipeline": info.pipeline,
        "path": info.path,
        "key": info.key,
        "size": info.size,
        "sizeHuman": store.human_size(info.size),
        "lastUsed": iso(info.last_used),
        "saved": iso(info.saved),
        "hits": info.hits,
        "misses": info.misses,
        "generation": info.generation,
    }
