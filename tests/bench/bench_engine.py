"""`./slipway bench engine`: the local engine's speed (issue 3, point 6), with Buildbot side by side.

Scenarios (each repeated; medians reported; every figure also as a ratio to a
baseline measured in the same run, so a busy machine shows in both):
  (a) per-step overhead = (t21 - t1) / 20, where tN = trigger -> execution seen
      finished for a pipeline of N one-step stages running `true` (sandbox
      runtime). Baseline: `bwrap ... true` spawned directly, per spawn.
      Target <= 15 ms per step.
  (b) trigger -> the first real step's process start, including the clone of a
      small repository; the step prints `date +%s.%N` (CLOCK_REALTIME, compared
      with time.time() taken just before the trigger). Baseline: `git clone` of
      the same repository + the same step in bwrap. Target <= 150 ms.
  (c) 20 pipelines of 10 one-step `true` stages triggered at once,
      executor-quota 2: trigger -> all seen finished. Baseline: the same 200
      `true` processes run 2 at a time in bwrap. Target <= 3 s.

Slipway runs as a user gets it (see _slipway.py): temporary SQLite data dir,
`runcontroller` in its own process, `do_run` (what the API calls) from
another. Buildbot 4.3.0 runs in its own venv (.slipway/bench-venvs/buildbot,
installed from PyPI on first use) as a master + two workers on loopback,
each build a Git step (fresh clone) + N ShellCommand steps, triggered over
its REST API as the web UI's Force button does (see _buildbot.py). Buildbot
runs steps unsandboxed; Slipway in bwrap. Neither side is polled hard while
it works: the bench learns of Slipway's finished executions from the
controller's doorbell, and of Buildbot's from the master's event stream (SSE).

Environment knob: SLIPWAY_BENCH_REPEAT (default 5) repetitions per scenario
((c) uses half, at least 2). Nothing here is part of the test suite.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.bench import _engine_common as common
from tests.bench._buildbot import BuildbotHarness, BuilderSpec, ensure_buildbot
from tests.bench._slipway import SlipwayHarness, SlipwayUnavailable

ROOT = Path(__file__).resolve().parents[2]
BUILDBOT_VENV = ROOT / ".slipway" / "bench-venvs" / "buildbot"
TARGETS = {"a": 0.015, "b": 0.150, "c": 3.0}


def _reps() -> tuple[int, int]:
    n = max(1, int(os.environ.get("SLIPWAY_BENCH_REPEAT", "5")))
    return n, max(2, n // 2)


def _repeat(n: int, fn: Callable[[], float]) -> list[float]:
    return [fn() for _ in range(n)]


# -- Buildbot ----------------------------------------------------------------

def measure_buildbot(root: Path, repos: common.Repos, reps: int, reps_c: int) -> dict:
    venv, why = ensure_buildbot(BUILDBOT_VENV)
    if venv is None:
        return {"error": f"Buildbot not available: {why}"}
    stamp = root / "bb-stamp"
    builders = [
        BuilderSpec("a1", ("true",), git_url=repos.a1),
        BuilderSpec("a21", ("true",) * 21, git_url=repos.a21),
        BuilderSpec("b", (f"{common.STAMP_SCRIPT} > {stamp}",), git_url=repos.b),
        BuilderSpec("c", ("true",) * 10, git_url=repos.c),
    ]
    try:
        return _buildbot_scenarios(venv, root / "buildbot", builders, stamp, reps, reps_c)
    except (RuntimeError, OSError, subprocess.CalledProcessError) as e:  # TimeoutError is an OSError
        return {"error": f"Buildbot run failed: {e}"}


def _buildbot_scenarios(venv: Path, bb_root: Path, builders: list[BuilderSpec], stamp: Path,
                        reps: int, reps_c: int) -> dict:
    with BuildbotHarness(venv, bb_root, builders) as bb:
        def once(builder: str) -> float:
            t0, bsid = bb.force(builder)
            return bb.wait_buildset(bsid) - t0

        for b in ("a1", "a21", "b", "c"):  # warm-up: builder directories made, first-run costs paid
            once(b)
        t1, t21 = [], []
        for _ in range(reps):
            t1.append(once("a1"))
            t21.append(once("a21"))

        def start_b() -> float:
            stamp.unlink(missing_ok=True)
            t0, bsid = bb.force("b")
            bb.wait_buildset(bsid)
            return float(stamp.read_text().strip()) - t0

        starts = _repeat(reps, start_b)

        def burst_c() -> float:
            t0 = time.time()
            bsids = [bb.force("c")[1] for _ in range(20)]
            return bb.wait_all(bsids) - t0

        totals = _repeat(reps_c, burst_c)
    return {"t1": t1, "t21": t21, "start": starts, "total": totals}


# -- Slipway -----------------------------------------------------------------

def measure_slipway(root: Path, repos: common.Repos, reps: int, reps_c: int) -> dict:
    urls = {"a1": repos.a1, "a21": repos.a21, "b": repos.b, "c": repos.c}
    try:
        with SlipwayHarness(root / "slipway") as sw:
            a = sw.scenario("a", reps=reps, repos=urls)
            b = sw.scenario("b", reps=reps, repos=urls)
            c = sw.scenario("c", reps=reps_c, repos=urls)
    except (SlipwayUnavailable, subprocess.TimeoutExpired) as e:
        return {"error": f"Slipway engine not available: {e}"}
    return {"t1": a["t1"], "t21": a["t21"], "step_duration": a["step_duration"], "step_gap": a["step_gap"], "start": b["start"], "do_run": b["do_run"], "phases": b["phases"],
            "total": c["total"], "trigger": c["trigger"], "run_time": c["run_time"], "handover": c["handover"],
            "runtimes": sorted(set(a["runtimes"]) | set(b["runtimes"]) | set(c["runtimes"]))}


# -- report ------------------------------------------------------------------

def per_step(m: dict) -> list[float]:
    """(t21 - t1) / 20 of each paired repetition."""
    return [(b - a) / 20 for a, b in zip(m["t1"], m["t21"], strict=True)]


def figures(m: dict) -> dict[str, float]:
    return {"a": common.median(per_step(m)), "b": common.median(m["start"]), "c": common.median(m["total"])}


def _fmt(key: str, seconds: float) -> str:
    return f"{seconds:.2f} s" if key == "c" else f"{seconds * 1000:.1f} ms"


def main() -> None:
    reps, reps_c = _reps()
    missing = [tool for tool in ("bwrap", "git") if shutil.which(tool) is None]
    if missing:
        print(f"bench engine needs {' and '.join(missing)} (Debian packages bubblewrap, git): not run")
        return
    scratch = Path(tempfile.mkdtemp(prefix="slipway-bench-engine-"))
    print(f"machine: {os.cpu_count()} cores, load average at start {common.loadavg()}; "
          f"{reps} repetitions ((c): {reps_c}), medians", flush=True)
    try:
        repos = common.make_repos(scratch / "repos")
        print("measuring baselines ...", flush=True)
        base_a = _repeat(reps, lambda: common.baseline_a(scratch))
        base_b = _repeat(reps, lambda: common.baseline_b(repos.b, scratch))
        base_c = _repeat(reps_c, lambda: common.baseline_c(scratch))
        baseline = {"a": common.median(base_a) / 20, "b": common.median(base_b), "c": common.median(base_c)}
        print(f"  (a) bwrap true, per spawn: {common.spread([x / 20 for x in base_a])}")
        print(f"  (b) git clone + bwrap step: {common.spread(base_b)}")
        print(f"  (c) 200 bwrap true, 2 at a time: {common.spread(base_c, 1, 's')}", flush=True)

        print("measuring Slipway ...", flush=True)
        sw = measure_slipway(scratch, repos, reps, reps_c)
        if "error" not in sw:
            print(f"  (a) t1 {common.spread(sw['t1'])}; t21 {common.spread(sw['t21'])}; "
                  f"per step {common.spread(per_step(sw))}")
            print(f"      inside the runner: a step lasts {common.spread(sw['step_duration'])}; "
                  f"step end -> next step start {common.spread(sw['step_gap'])}")
            print(f"  (b) {common.spread(sw['start'])}; of which do_run (reads .devops.yml from the repository) "
                  f"{common.spread(sw['do_run'])}")
            print("      timeline (medians, ms after the trigger): " + ", ".join(
                f"{label} {common.median(v) * 1000:.0f}" for label, v in sw["phases"].items()))
            print(f"  (c) {common.spread(sw['total'], 1, 's')}; of which 20 do_run calls "
                  f"{common.spread(sw['trigger'], 1, 's')}; step runtimes seen: {', '.join(sw['runtimes'])}")
            print(f"      per execution: runs {common.spread(sw['run_time'])}; a slot's previous execution "
                  f"ended -> next started {common.spread(sw['handover'])}", flush=True)
        print("measuring Buildbot ...", flush=True)
        bb = measure_buildbot(scratch, repos, reps, reps_c)
        if "error" not in bb:
            print(f"  (a) t1 {common.spread(bb['t1'])}; t21 {common.spread(bb['t21'])}; "
                  f"per step {common.spread(per_step(bb))}")
            print(f"  (b) {common.spread(bb['start'])}")
            print(f"  (c) {common.spread(bb['total'], 1, 's')}", flush=True)

        titles = {"a": "(a) per-step overhead", "b": "(b) trigger -> first step start", "c": "(c) 20x10 steps, quota 2"}
        sw_f = figures(sw) if "error" not in sw else None
        bb_f = figures(bb) if "error" not in bb else None
        print(f"\nresults (load average at end {common.loadavg()}):")
        for key, title in titles.items():
            parts = [f"{title}: baseline {_fmt(key, baseline[key])}"]
            if sw_f:
                ok = "meets" if sw_f[key] <= TARGETS[key] else "MISSES"
                parts.append(f"Slipway {_fmt(key, sw_f[key])} = {sw_f[key] / baseline[key]:.1f}x baseline "
                             f"({ok} target {_fmt(key, TARGETS[key])})")
            if bb_f:
                parts.append(f"Buildbot {_fmt(key, bb_f[key])} = {bb_f[key] / baseline[key]:.1f}x baseline")
            if sw_f and bb_f:
                parts.append(f"Slipway/Buildbot {sw_f[key] / bb_f[key]:.2f}")
            print("  " + "; ".join(parts))
        for side in (sw, bb):
            if "error" in side:
                print(f"  {side['error']}")
    finally:
        common.cleanup(scratch)
