"""The runner's hook: caches (and package mirrors) for one step.

Call order, in the runner process, per step (the local engine's hooks,
`runner.BEFORE_STEP` / `runner.AFTER_STEP`; `ctx` is a `step.CacheStep`)::

    prepare_step_caches(ctx)            # before the step: adds mounts, adds mirror env
    result = kind.run(ctx)
    finish_step_caches(ctx, result)     # after (also when it failed): save on success

`prepare_step_caches` restores a private copy of every cache path of the
step's effective `cache:` (nearest of step, stage, pipeline) and appends a
mount per path (`ctx.add_mount`): absolute targets are bind-mounted by the container and
sandbox runtimes, workspace-relative targets are linked (host) or bind-mounted
(container, sandbox) into the workspace by the runtime.
`finish(0)` publishes each copy as the cache's new generation and applies the
project's size cap; anything else discards the copies, and so does a run of
a pull request (`spec.trusted` False: caches restored, never published). Both write what they
did into the step's log. Neither raises for cache trouble: a cache is an
optimisation, so problems are logged and the step goes on without it.
"""
from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from devops.cache.mirrors import apply_mirrors
from devops.cache.store import CacheEntry, enforce_cap, human_size
from devops.pipeline.kinds import STEP_KINDS
from devops.quantity import QuantityError, parse_bytes

if TYPE_CHECKING:
    from devops.cache.step import CacheStep

log = logging.getLogger(__name__)

DEFAULT_CAP = "10Gi"


def size_cap(settings: dict[str, str]) -> tuple[str, int, str]:
    """(cap as written, in bytes, a problem to log) of the project's `cache-size-cap`.

    Parsed as the settings API checks it (devops.quantity), so any accepted
    value applies; only a value stored before that check falls back to the default.
    """
    text = (settings.get("cache-size-cap") or "").strip() or DEFAULT_CAP
    try:
        return text, parse_bytes(text), ""
    except QuantityError as exc:
        return DEFAULT_CAP, parse_bytes(DEFAULT_CAP), f"cache-size-cap: {exc}; using {DEFAULT_CAP}"




def cache_root(settings: dict[str, str], data_dir: Path) -> Path:
    """The project's cache root: the `devops-cache-dir` setting, else DATA_DIR/cache."""
    configured = (settings.get("devops-cache-dir") or "").strip()
    return Path(configured) if configured else Path(data_dir) / "cache"


def cache_paths(ctx: CacheStep) -> tuple[str, ...]:
    """The step's effective cache paths (empty when off or not a cached kind)."""
    kind = STEP_KINDS.get(ctx.config.kind)
    if kind is None or not kind.caches:  # which kinds: the step-kind records (pipeline/kinds.py)
        return ()
    # The nearest level that says anything wins: `cache: false` / `enabled:
    # false` turns caching off there; `cache: true` or a list of paths turns
    # it on, with its own paths or else the nearest outer level's paths (so a
    # step's `cache: true` re-enables what its disabled stage inherited).
    cfg = ctx.spec.config
    stage = cfg.stages[ctx.stage]
    levels = [c for c in (stage.steps[ctx.step].cache, stage.cache, cfg.cache) if c is not None]
    paths: tuple[str, ...] = ()
    for i, level in enumerate(levels):
        if level.enabled is False:
            return ()
        if level.enabled is True or level.paths:
            paths = next((c.paths for c in levels[i:] if c.paths), ())
            break
    seen: list[str] = []
    for p in paths:
        p = p.strip()
        if p and p not in seen:
            seen.append(p)
    return tuple(seen)


@dataclass
class _Restored:
    entry: CacheEntry
    work: Path
    hit: bool


@dataclass
class StepCaches:
    """What `prepare_step_caches` restored for one step; `finish` saves or discards it."""

    ctx: CacheStep = field(repr=False)
    restored: list[_Restored] = field(default_factory=list)
    root: Path | None = None
    finished: bool = False

    def finish(self, exit_code: int | None) -> None:
        """Publish every cache when the step exited 0, else discard. Idempotent."""
        if self.finished:
            return
        self.finished = True
        ctx = self.ctx
        ok = exit_code == 0
        trusted = getattr(ctx.spec, "trusted", True)
        for r in self.restored:
            try:
                if ok and not trusted:
                    # A pull request's code could plant anything in the cache
                    # that later trusted runs would then execute.
                    r.entry.discard(r.work)
                    ctx.say(f"cache not saved: {r.entry.path} (runs of pull requests never publish caches)")
                elif ok:
                    meta = r.entry.publish(r.work)
                    ctx.say(f"cache saved: {r.entry.path} ({human_size(meta.size)}, "
                            f"generation {meta.generation})")
                else:
                    r.entry.discard(r.work)
                    ctx.say(f"cache not saved: {r.entry.path} (the step did not succeed)")
            except OSError as e:
                log.warning("cache %s of %s: %s", r.entry.path, ctx.spec.pipeline_id, e)
                ctx.say(f"cache not saved: {r.entry.path} ({e.strerror or e})")
                r.entry.discard(r.work)
        if ok and trusted and self.restored and self.root is not None:
            cap_text, cap, problem = size_cap(ctx.spec.settings)
            if problem:
                ctx.say(problem)
            for info in enforce_cap(self.root, ctx.spec.project_id, cap,
                                    keep=self.restored[-1].entry):
                ctx.say(f"cache evicted (project over its {cap_text} cap, least recently used): "
                        f"{info.pipeline} {info.path} ({human_size(info.size)})")

    # `with prepare_step_caches(ctx) as caches:` also works; an exception discards.
    def __enter__(self) -> StepCaches:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.finish(None)


def prepare_step_caches(ctx: CacheStep) -> StepCaches:
    """Restore the step's caches into private copies and mount them (`ctx.add_mount`).

    Also injects the project's package mirrors (`apply_mirrors`). Returns the
    handle (also kept on the context) whose `finish(exit_code)` runs after the
    step; `finish_step_caches(ctx, result)` calls it.
    """
    apply_mirrors(ctx)
    handle = StepCaches(ctx)
    ctx.step_caches = handle
    paths = cache_paths(ctx)
    runtime = getattr(getattr(ctx, "runtime", None), "name", "")
    if not paths:
        return handle
    root = cache_root(ctx.spec.settings, ctx.data_dir)
    handle.root = root
    for path in paths:
        target = path if path.startswith("/") else posixpath.normpath(path)
        if not path.startswith("/") and (target == ".." or target.startswith("../") or target == "."):
            ctx.say(f"cache path {path!r} leaves the workspace; skipped")
            continue
        if path.startswith("/") and runtime == "host":
            # DESIGN §10: absolute cache paths only inside a container or sandbox.
            ctx.say(f"cache {path} skipped: the host runtime cannot mount absolute paths")
            continue
        entry = CacheEntry(root, ctx.spec.project_id, ctx.spec.pipeline_id, path)
        try:
            work, hit = entry.restore()
        except (OSError, ValueError) as e:
            ctx.say(f"cache {path}: cannot restore ({e}); the step runs without it")
            continue
        handle.restored.append(_Restored(entry, work, hit))
        ctx.add_mount(work, target)
        if hit:
            ctx.say(f"cache restored: {path} ({human_size(entry.read_meta().size)})")
        else:
            ctx.say(f"cache miss: {path} (empty; saved after the step succeeds)")
    return handle


def finish_step_caches(ctx: CacheStep, result=None) -> None:
    """After the step: save its caches when `result.exit_code == 0`, else discard them."""
    handle = getattr(ctx, "step_caches", None)
    if handle is not None:
        handle.finish(getattr(result, "exit_code", None) if result is not None else None)
