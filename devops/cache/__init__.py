"""Caches: directories per (pipeline, path), generations, eviction, node affinity (DESIGN §6).

The runner's hooks are `prepare_step_caches(ctx)` and `finish_step_caches(ctx, result)`
(see stepcache.py).
Pure parts (store, affinity, mirrors) never import Django models; views.py
and index.py (API/CLI) do.
"""
from __future__ import annotations

from devops.cache.stepcache import StepCaches, cache_root, finish_step_caches, prepare_step_caches

__all__ = ["StepCaches", "cache_root", "finish_step_caches", "prepare_step_caches"]
