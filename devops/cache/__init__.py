"""Caches: directories per (pipeline, path), generations, eviction, node affinity (DESIGN §6).

The runner's hooks are `prepare_step_caches(ctx)` and `finish_step_caches(ctx, result)`
(see stepcache.py).
The whole package is Django-free and never imports the engine (it sees a step
through `step.CacheStep`); its API and CLI side is `devops.api.caches` /
`devops.api.views_caches`.
"""
from __future__ import annotations

from devops.cache.stepcache import StepCaches, cache_root, finish_step_caches, prepare_step_caches

__all__ = ["StepCaches", "cache_root", "finish_step_caches", "prepare_step_caches"]
