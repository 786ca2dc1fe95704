"""The cache store on a real filesystem: generations, privacy, concurrency, LRU eviction."""
from __future__ import annotations

import multiprocessing
import os
import time

from devops.cache.store import (
    CacheEntry,
    clear_caches,
    enforce_cap,
    list_caches,
    slug_for,
)


def test_slug():
    assert slug_for("/root/.ccache").startswith("root_.ccache-")
    assert slug_for("/root/.ccache") != slug_for("/root/_ccache")


def test_restore_publish_restore(tmp_path):
    e = CacheEntry(tmp_path, "p1", "pl1", "/root/.cache")
    work, hit = e.restore()
    assert not hit and list(work.iterdir()) == []
    (work / "a.txt").write_text("one")
    meta = e.publish(work)
    assert meta.generation == 1 and meta.size > 0
    work2, hit2 = e.restore()
    assert hit2 and (work2 / "a.txt").read_text() == "one"
    # The copy is private: rewriting a file in place never reaches the published generation.
    (work2 / "a.txt").write_text("changed in place")
    work3, _ = e.restore()
    assert (work3 / "a.txt").read_text() == "one"
    e.discard(work2)
    e.discard(work3)
    m = e.read_meta()
    assert (m.hits, m.misses) == (2, 1)
    # Only one generation stays on disk.
    assert [p.name for p in e.dir.iterdir() if p.name.startswith("gen-")] == ["gen-000001"]


def _concurrent_run(root, barrier, name, results):
    e = CacheEntry(root, "p1", "pl1", "deps")
    work, hit = e.restore()
    barrier.wait()
    # Both runs hold their copies at once and write the same files.
    for i in range(50):
        (work / f"f{i}").write_text(f"{name}-{i}" * 100)
    (work / "owner").write_text(name)
    barrier.wait()
    e.publish(work)
    results.put((name, hit))


def test_two_concurrent_runs_both_publish_a_complete_tree(tmp_path):
    e = CacheEntry(tmp_path, "p1", "pl1", "deps")
    w, _ = e.restore()
    (w / "seed").write_text("seed")
    e.publish(w)
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_concurrent_run, args=(tmp_path, barrier, n, results)) for n in ("A", "B")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    got = sorted(results.get(timeout=5) for _ in procs)
    assert got == [("A", True), ("B", True)]  # both restored the seed generation
    # The cache is one complete tree written by exactly one run (last writer wins).
    work, hit = e.restore()
    owner = (work / "owner").read_text()
    assert hit and owner in ("A", "B") and (work / "seed").read_text() == "seed"
    assert all((work / f"f{i}").read_text() == f"{owner}-{i}" * 100 for i in range(50))
    assert e.read_meta().generation == 3
    assert len([p for p in e.dir.iterdir() if p.name.startswith("gen-")]) == 1
    e.discard(work)


def test_failed_step_discards_and_clear_spares_running_copies(tmp_path):
    e = CacheEntry(tmp_path, "p1", "pl1", "/x")
    w, _ = e.restore()
    (w / "a").write_text("a")
    e.publish(w)
    running, _ = e.restore()
    assert clear_caches(tmp_path, "p1") == 1
    assert list_caches(tmp_path, "p1") == []
    assert (running / "a").read_text() == "a"  # the running step's copy is untouched
    e.publish(running)  # and saving afterwards starts the cache again
    assert [c.generation for c in list_caches(tmp_path, "p1")] == [1]


def test_dead_runner_copies_are_swept(tmp_path):
    e = CacheEntry(tmp_path, "p1", "pl1", "/x")
    stale = tmp_path / "p1" / ".work" / f"{e.key}-999999999-abcd"
    stale.mkdir(parents=True)
    work, _ = e.restore()
    assert not stale.exists() and work.exists()


def _fill(root, pipeline, path, size, last_used):
    e = CacheEntry(root, "p1", pipeline, path)
    w, _ = e.restore()
    (w / "blob").write_bytes(os.urandom(size))
    e.publish(w)
    with e.locked():
        m = e.read_meta()
        m.last_used = last_used
        e._write_meta(m)
    return e


def test_lru_eviction_under_the_cap(tmp_path):
    now = time.time()
    _fill(tmp_path, "plA", "/old", 40_000, now - 300)
    _fill(tmp_path, "plA", "/mid", 40_000, now - 200)
    newest = _fill(tmp_path, "plB", "/new", 40_000, now - 100)
    evicted = enforce_cap(tmp_path, "p1", 100_000, keep=newest)
    assert [i.path for i in evicted] == ["/old"]
    assert sorted(i.path for i in list_caches(tmp_path, "p1")) == ["/mid", "/new"]
    assert enforce_cap(tmp_path, "p1", 100_000) == []
    # Under a tiny cap everything goes, the kept one last.
    assert [i.path for i in enforce_cap(tmp_path, "p1", 1, keep=newest)] == ["/mid", "/new"]


def test_nearest_level_rules(tmp_path):
    from devops.cache.stepcache import cache_paths
    from tests.images_registry.conftest import make_ctx

    def paths(step_cache=None, stage_cache=None, pipeline_cache=None):
        step = {"type": {"kind": "runScriptConfig", "image": "x"}}
        if step_cache is not None:
            step["cache"] = step_cache
        stage = {"name": "B", "steps": [step]}
        if stage_cache is not None:
            stage["cache"] = stage_cache
        ctx = make_ctx(data_dir=tmp_path, workspace=tmp_path / "ws", run_dir=tmp_path / "run",
                       stages=[stage], cache=pipeline_cache)
        return cache_paths(ctx)

    assert paths(pipeline_cache={"paths": ["/p"]}) == ("/p",)
    assert paths(stage_cache={"paths": ["/s"]}, pipeline_cache={"paths": ["/p"]}) == ("/s",)
    assert paths({"paths": ["/t", "/t"]}, {"paths": ["/s"]}) == ("/t",)
    assert paths({"enabled": False}, {"paths": ["/s"]}) == ()
    assert paths(None, {"enabled": False}, {"paths": ["/p"]}) == ()
    assert paths({"enabled": True}, {"enabled": False}, {"paths": ["/p"]}) == ("/p",)
    assert paths() == ()


def test_yaml_forms_through_the_parser(tmp_path):
    """`cache:` as written in a pipeline file, parsed by devops.pipeline, then resolved per step."""
    from dataclasses import replace

    from devops.cache.stepcache import cache_paths
    from devops.pipeline import load
    from tests.images_registry.conftest import make_ctx

    config = load("""
cache: [/root/.ccache, node_modules]
stages:
- name: A
  steps:
  - runScriptConfig: {image: x, shellScript: y}
  - runScriptConfig: {image: x, shellScript: y}
    cache: {enabled: false}
- name: B
  cache: false
  steps:
  - runScriptConfig: {image: x, shellScript: y}
  - runScriptConfig: {image: x, shellScript: y}
    cache: true
  - runScriptConfig: {image: x, shellScript: y}
    cache: {paths: [/root/.m2]}
""").config
    base = make_ctx(data_dir=tmp_path, workspace=tmp_path / "ws", run_dir=tmp_path / "run",
                    stages=[{"name": "S", "steps": [{"type": {"kind": "runScriptConfig", "image": "x"}}]}])
    spec = replace(base.spec, config=config)

    def at(stage, step):
        return cache_paths(replace(base, spec=spec, stage=stage, step=step, config=config.step(stage, step)))

    assert at(1, 0) == ("/root/.ccache", "node_modules")
    assert at(1, 1) == ()
    assert at(2, 0) == ()
    assert at(2, 1) == ("/root/.ccache", "node_modules")
    assert at(2, 2) == ("/root/.m2",)


def test_which_kinds_get_caches_and_mirrors_is_read_from_the_step_kind_records(tmp_path, monkeypatch):
    """One record per step kind (pipeline/kinds.py): the cache and mirror hooks hold no list of their own."""
    from dataclasses import replace

    from devops.cache.mirrors import apply_mirrors
    from devops.cache.stepcache import cache_paths
    from devops.pipeline import kinds
    from tests.images_registry.conftest import make_ctx

    def ctx(kind: dict):
        return make_ctx(data_dir=tmp_path, workspace=tmp_path / "ws", run_dir=tmp_path / "run",
                        stages=[{"name": "B", "steps": [{"type": kind}]}], cache={"paths": ["/p"]},
                        settings={"pip-index-url": "https://pypi.mirror.internal/simple"})

    script = {"kind": "runScriptConfig", "image": "x"}
    publish = {"kind": "publishImageConfig", "tag": "a/b:c"}
    assert cache_paths(ctx(script)) == ("/p",) and apply_mirrors(ctx(script)) == ["PIP_INDEX_URL"]
    assert cache_paths(ctx(publish)) == () and apply_mirrors(ctx(publish)) == []
    record = kinds.STEP_KINDS["publishImageConfig"]
    monkeypatch.setitem(kinds.STEP_KINDS, "publishImageConfig", replace(record, caches=True, mirrors=True))
    assert cache_paths(ctx(publish)) == ("/p",)
    assert apply_mirrors(ctx(publish)) == ["PIP_INDEX_URL"]
