"""Caches through the real local engine (bwrap sandbox): restore/save, nearest level, concurrency, ccache."""
from __future__ import annotations

import shutil

import pytest

from tests.conftest import require_tool
from tests.engines.conftest import Repo, config, git, log_of, make_engine, make_spec, wait_done

pytestmark = pytest.mark.services

COUNTER = (
    "n=$(cat /root/.democache/n 2>/dev/null || echo 0); echo $((n+1)) > /root/.democache/n; "
    "echo run-$n >> deps/list; echo count=$n; {extra}"
)


@pytest.fixture
def repo(tmp_path) -> Repo:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    r = Repo(path, [])
    r.commit("README", "cache test\n")
    return r


def _run(engine, data_dir, repo, cfg, name, timeout=30):
    spec = make_spec(repo, cfg, name=name, project_id="p-cache", pipeline_id="pl-cache")
    return spec, wait_done(engine, spec, engine.run(spec), timeout=timeout)


def _counter_pipeline(extra: str = "", **step):
    return config(
        [{"name": "Build", "steps": [{"type": {"kind": "runScriptConfig", "image": "busybox",
                                               "shellScript": COUNTER.format(extra=extra)}, **step}]}],
        cache={"paths": ["/root/.democache", "deps"]},
    )


def test_restore_and_save_across_runs(tmp_path, repo):
    require_tool("bwrap")
    data = tmp_path / "data"
    engine = make_engine(data, runtime="sandbox")
    spec1, r1 = _run(engine, data, repo, _counter_pipeline(), "p-cache-1")
    log1 = log_of(data, spec1, 1, 0)
    assert r1.state == "Success", log1
    assert "cache miss: /root/.democache" in log1 and "cache miss: deps" in log1
    assert "cache saved: /root/.democache" in log1 and "count=0" in log1
    spec2, r2 = _run(engine, data, repo, _counter_pipeline("cat deps/list"), "p-cache-2")
    log2 = log_of(data, spec2, 1, 0)
    assert r2.state == "Success", log2
    assert "cache restored: /root/.democache" in log2 and "cache restored: deps" in log2
    assert "count=1" in log2 and "run-0" in log2
    # A failing step does not save: the next run still sees count=2.
    spec3, r3 = _run(engine, data, repo, _counter_pipeline("exit 3"), "p-cache-3")
    assert r3.state == "Failed" and "cache not saved: /root/.democache" in log_of(data, spec3, 1, 0)
    spec4, _r4 = _run(engine, data, repo, _counter_pipeline(), "p-cache-4")
    assert "count=2" in log_of(data, spec4, 1, 0)


def test_nearest_level_wins(tmp_path, repo):
    require_tool("bwrap")
    data = tmp_path / "data"
    engine = make_engine(data, runtime="sandbox")
    cfg = config([{"name": "Build", "steps": [
        {"type": {"kind": "runScriptConfig", "image": "busybox", "shellScript": "echo step-one"},
         "cache": {"enabled": False}},
        {"type": {"kind": "runScriptConfig", "image": "busybox", "shellScript": "ls -d /root/.democache"}},
    ]}], cache={"paths": ["/root/.democache"]})
    spec, r = _run(engine, data, repo, cfg, "p-cache-off-1")
    off, inherited = log_of(data, spec, 1, 0), log_of(data, spec, 1, 1)
    assert r.state == "Success", (off, inherited)
    assert "step-one" in off and "cache" not in off      # the step's `enabled: false` wins
    assert "cache miss: /root/.democache" in inherited   # its neighbour inherits the pipeline's


@pytest.mark.slow
def test_two_concurrent_runs_both_succeed_and_cache_stays_usable(tmp_path, repo):
    require_tool("bwrap")
    data = tmp_path / "data"
    engine = make_engine(data, runtime="sandbox")
    _run(engine, data, repo, _counter_pipeline(), "p-cache-seq")
    specs = [make_spec(repo, _counter_pipeline("sleep 1"), name=f"p-cache-c{i}", project_id="p-cache",
                       pipeline_id="pl-cache") for i in (1, 2)]
    handles = [engine.run(s) for s in specs]  # both running at once
    reports = [wait_done(engine, s, h, timeout=30) for s, h in zip(specs, handles, strict=False)]
    for s, r in zip(specs, reports, strict=False):
        log = log_of(data, s, 1, 0)
        assert r.state == "Success", log
        assert "cache restored: /root/.democache" in log and "count=1" in log and "cache saved" in log
    spec, r = _run(engine, data, repo, _counter_pipeline("cat deps/list"), "p-cache-after")
    log = log_of(data, spec, 1, 0)
    assert r.state == "Success" and "count=2" in log and "run-1" in log
    from devops.cache.store import list_caches

    infos = {i.path: i for i in list_caches(data / "cache", "p-cache")}
    assert infos["/root/.democache"].hits == 3 and infos["/root/.democache"].misses == 1


@pytest.mark.slow
def test_ccache_warm_run_hits(tmp_path):
    require_tool("bwrap")
    require_tool("ccache")
    require_tool("gcc")
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    repo = Repo(path, [])
    for i in range(3):
        repo.commit(f"f{i}.c", f"int f{i}(int x) {{ return x * {i + 2}; }}\n")
    script = ("export CCACHE_DIR=/root/.ccache; for f in *.c; do ccache gcc -O2 -c $f -o /tmp/$f.o; done; "
              "ccache --print-stats | grep -E '^(direct_cache_hit|cache_miss)'")
    cfg = config([{"name": "Build", "steps": [{"type": {"kind": "runScriptConfig", "image": "gcc",
                                                        "shellScript": script},
                                               "cache": {"paths": ["/root/.ccache"]}}]}])
    data = tmp_path / "data"
    engine = make_engine(data, runtime="sandbox")
    s1, r1 = _run(engine, data, repo, cfg, "p-cc-1")
    assert r1.state == "Success", log_of(data, s1, 1, 0)
    assert "direct_cache_hit\t0" in log_of(data, s1, 1, 0)
    s2, r2 = _run(engine, data, repo, cfg, "p-cc-2")
    log2 = log_of(data, s2, 1, 0)
    assert r2.state == "Success" and "cache restored: /root/.ccache" in log2
    assert "direct_cache_hit\t3" in log2, log2
    shutil.rmtree(data / "cache", ignore_errors=True)


def test_lru_eviction_under_the_project_cap(tmp_path, repo):
    """cache-size-cap: saving a cache evicts the project's least recently used one."""
    require_tool("bwrap")
    data = tmp_path / "data"
    engine = make_engine(data, runtime="sandbox")
    cfg = config([{"name": "Fill", "steps": [{"type": {"kind": "runScriptConfig", "image": "busybox",
                                                       "shellScript": "head -c 60000 /dev/urandom > /root/.big/blob"}}]}],
                 cache={"paths": ["/root/.big"]})
    logs = {}
    for pipeline in ("pl-old", "pl-new"):
        spec = make_spec(repo, cfg, name=f"p-evict-{pipeline}", project_id="p-evict", pipeline_id=pipeline,
                         settings={"cache-size-cap": "100k"})
        report = wait_done(engine, spec, engine.run(spec))
        logs[pipeline] = log_of(data, spec, 1, 0)
        assert report.state == "Success", logs[pipeline]
    assert "cache evicted" not in logs["pl-old"]
    assert "cache evicted (project over its 100k cap, least recently used): pl-old /root/.big" in logs["pl-new"]
    from devops.cache.store import list_caches

    assert [i.pipeline for i in list_caches(data / "cache", "p-evict")] == ["pl-new"]
