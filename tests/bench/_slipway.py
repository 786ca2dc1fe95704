"""Slipway side of `bench engine`: a real controller process and a trigger process, on a temporary data dir.

The setup a user gets with the embedded default: SQLite in a fresh
SLIPWAY_DATA_DIR, `manage.py runcontroller` running in its own process, and
triggers coming from another process (the web/API process in real life)
through `devops.controller.actions.do_run` — the function the API's
`POST .../run` calls. Steps use SLIPWAY_STEP_RUNTIME=sandbox (bwrap).

    with SlipwayHarness(root) as sw:          # migrate, start runcontroller, wait for its doorbell
        result = sw.scenario("a", reps=5, repos=repos)   # runs this module as a driver subprocess
    # leaving the block stops the controller (SIGTERM, then SIGKILL of its process group)

The driver (`python -m tests.bench._slipway SCENARIO ...`) sets Django up
before measuring, so start-up cost is outside every measured window, and
prints one JSON object as its last stdout line.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path
from typing import Self

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
FINISHED = {"Success", "Failed", "Aborted", "Denied", "Skipped"}


class SlipwayUnavailable(Exception):
    """The Slipway engine cannot be measured; the message says why."""


def missing_parts() -> str:
    """Why Slipway cannot run yet ("" when every entry point the bench drives exists)."""
    need = {
        "devops/controller/actions": "do_run",
        "devops/controller/loop.py": "Controller",
        "devops/management/commands/runcontroller.py": "runcontroller command",
        "devops/engines/local/engine.py": "LocalEngine",
    }
    missing = [f"{what} ({path})" for path, what in need.items() if not (ROOT / path).exists()]
    return ", ".join(missing)


def slipway_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SLIPWAY_") and k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({
        "DJANGO_SETTINGS_MODULE": "devops.settings",
        "SLIPWAY_DATA_DIR": str(data_dir),
        "SLIPWAY_STEP_RUNTIME": "sandbox",
        "SLIPWAY_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    })
    return env


class SlipwayHarness:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.data_dir = root / "slipway-data"
        self.env = slipway_env(self.data_dir)
        self.controller: subprocess.Popen | None = None

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 60.0) -> None:
        why = missing_parts()
        if why:
            raise SlipwayUnavailable(f"missing {why}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SlipwayUnavailable(f"migrate failed: {_tail(done.stderr or done.stdout)}")
        self.log_path = self.root / "runcontroller.log"
        with open(self.log_path, "wb") as out:
            # Own process group: stop() ends exactly the controller and the runners it started.
            self.controller = subprocess.Popen([PY, "manage.py", "runcontroller"], cwd=ROOT, env=self.env,
                                               stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                               start_new_session=True)
        bells = self.data_dir / "doorbell"
        deadline = time.monotonic() + timeout
        # Ready once the controller listens on its doorbell (nothing else runs on this data dir yet).
        while not any(p.name.endswith(".sock") for p in _ls(bells)):
            if self.controller.poll() is not None:
                raise SlipwayUnavailable(f"runcontroller exited with {self.controller.returncode}: "
                                         f"{_tail(self.log_path.read_text(errors='replace'))}")
            if time.monotonic() > deadline:
                raise SlipwayUnavailable(f"runcontroller did not start listening within {timeout:.0f}s")
            time.sleep(0.05)

    def stop(self) -> None:
        p, self.controller = self.controller, None
        if p is None:
            return
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(p.pid, signal.SIGKILL)  # anything left of the controller's own group
        except ProcessLookupError:
            pass
        p.wait()
        self._end_runners()

    def _end_runners(self) -> None:
        """Runners detach into their own session (they outlive a controller crash by design);
        after an aborted bench one may still run. End those of OUR data dir only: each
        run dir's runner.json names pid, session and start time, checked against /proc."""
        for f in self.data_dir.rglob("runner.json"):
            try:
                info = json.loads(f.read_text())
                with open(f"/proc/{int(info['pid'])}/stat", "rb") as st:
                    raw = st.read()
            except (OSError, ValueError, KeyError):
                continue
            fields = raw[raw.rindex(b")") + 2:].split()
            if int(fields[19]) == int(info.get("start_time", -1)) and int(fields[3]) == int(info.get("sid", -1)):
                try:
                    os.killpg(int(info["sid"]), signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def scenario(self, name: str, *, reps: int, repos: dict[str, str], timeout: float = 600.0) -> dict:
        if self.controller is None or self.controller.poll() is not None:
            raise SlipwayUnavailable("runcontroller is not running")
        argv = [PY, "-m", "tests.bench._slipway", name, "--reps", str(reps), "--repos", json.dumps(repos)]
        done = subprocess.run(argv, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout,
                              check=False)
        last = (done.stdout.strip().splitlines() or [""])[-1]
        if done.returncode != 0 or not last.startswith("{"):
            raise SlipwayUnavailable(f"scenario {name} failed (exit {done.returncode}): "
                                     f"{_tail(done.stderr or done.stdout)}")
        return json.loads(last)


def _ls(path: Path) -> list[Path]:
    try:
        return list(path.iterdir())
    except OSError:
        return []


def _tail(text: str, lines: int = 6) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])


# -- the driver (runs in its own process, Django set up) ----------------------------

def _driver(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=["a", "b", "c"])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--repos", required=True)
    args = parser.parse_args(argv)
    repos: dict[str, str] = json.loads(args.repos)

    import django

    django.setup()
    from django.conf import settings

    from devops.controller.actions import do_run
    from devops.controller.projects import do_create_project
    from devops.doorbell import Bell
    from devops.logs import LogKey, get_log_store
    from devops.models import Pipeline, PipelineExecution, PipelineSetting, Project, StepStatus

    project = Project.objects.filter(name="bench").first() or do_create_project("bench")
    PipelineSetting.objects.filter(project=project, name="executor-quota").update(value="2")

    def pipeline(url: str) -> Pipeline:
        found = Pipeline.objects.filter(project=project, repository_url=url).first()
        return found or Pipeline.objects.create(project=project, repository_url=url, default_branch="main")

    bell = Bell(settings.DATA_DIR)

    def wait(names: list[str], timeout: float = 300.0) -> float:
        """time.time() at which every execution in `names` was seen finished (Success required)."""
        deadline = time.monotonic() + timeout
        while True:
            states = dict(PipelineExecution.objects.filter(name__in=names).values_list("name", "execution_state"))
            if len(states) == len(names) and all(s in FINISHED for s in states.values()):
                t = time.time()
                bad = {n: s for n, s in states.items() if s != "Success"}
                if bad:
                    errors = dict(PipelineExecution.objects.filter(name__in=bad).values_list("name", "error"))
                    raise RuntimeError(f"executions did not succeed: {bad} {errors}")
                return t
            if time.monotonic() > deadline:
                raise TimeoutError(f"executions not finished after {timeout:.0f}s: {states}")
            # do_finish rings every doorbell after its commit, ours included: we wake at once,
            # without polling the database (which would cost CPU the controller needs); the
            # 1 s timeout only covers a missed ring. Buildbot's side waits the same way (SSE).
            bell.wait(1.0)

    def runtimes(name: str) -> set[str]:
        return set(StepStatus.objects.filter(execution__name=name, stage_index__gte=1)
                   .values_list("runtime", flat=True))

    calls: list[float] = []  # how long do_run itself took (reads the pipeline file from the repository)

    def run_one(p: Pipeline) -> tuple[float, float, str]:
        t0 = time.time()
        ex = do_run(p, branch="main")
        calls.append(time.time() - t0)
        return t0, wait([ex.name]), ex.name

    out: dict = {"scenario": args.scenario}
    seen_runtimes: set[str] = set()
    if args.scenario == "a":
        p1, p21 = pipeline(repos["a1"]), pipeline(repos["a21"])
        run_one(p1), run_one(p21)  # warm-up: mirrors fetched, first-run costs paid
        t1s, t21s, durations, gaps = [], [], [], []
        for _ in range(args.reps):
            t0, t1, name = run_one(p1)
            t1s.append(t1 - t0)
            t0, t21, name = run_one(p21)
            t21s.append(t21 - t0)
            seen_runtimes |= runtimes(name)
            # Inside the runner, from the rows Slipway wrote: a step's own duration (bwrap + sh + true)
            # and the gap from one step's end to the next one's start (Slipway's bookkeeping).
            rows = list(StepStatus.objects.filter(execution__name=name, stage_index__gte=1)
                        .order_by("stage_index").values_list("started", "ended"))
            durations += [(e - b).total_seconds() for b, e in rows if b and e]
            gaps += [(nb - pe).total_seconds() for (_pb, pe), (nb, _ne) in pairwise(rows) if pe and nb]
        out.update(t1=t1s, t21=t21s, step_duration=durations, step_gap=gaps)
    elif args.scenario == "b":
        pb = pipeline(repos["b"])
        run_one(pb)
        calls.clear()
        store = get_log_store()
        starts, totals = [], []
        phases: dict[str, list[float]] = {}
        for _ in range(args.reps):
            t0, t_end, name = run_one(pb)
            text = store.read(LogKey(name, 1, 0)).decode(errors="replace")
            stamps = re.findall(r"^(\d{9,}\.\d+)\s*$", text, flags=re.MULTILINE)
            if not stamps:
                raise RuntimeError(f"no stamp in the log of {name} stage 1 step 0: {text[-300:]!r}")
            starts.append(float(stamps[-1]) - t0)
            totals.append(t_end - t0)
            seen_runtimes |= runtimes(name)
            # Where the time went, from the rows Slipway wrote (its own clock readings).
            ex = PipelineExecution.objects.get(name=name)
            rows = {(r.stage_index, r.index): r for r in StepStatus.objects.filter(execution=ex)}
            marks = {"execution started": ex.started, "clone started": rows[(0, 0)].started,
                     "clone ended": rows[(0, 0)].ended, "step started": rows[(1, 0)].started}
            for label, when in marks.items():
                if when is not None:
                    phases.setdefault(label, []).append(when.timestamp() - t0)
        out.update(start=starts, total=totals, do_run=calls, phases=phases)
    else:
        pc = pipeline(repos["c"])
        run_one(pc)
        totals, triggers, run_times, handover = [], [], [], []
        for _ in range(args.reps):
            t0 = time.time()
            names = [do_run(pc, branch="main").name for _ in range(20)]
            triggers.append(time.time() - t0)
            t_end = wait(names)
            totals.append(t_end - t0)
            seen_runtimes |= runtimes(names[-1])
            # Per execution, from Slipway's rows: how long it ran (started -> ended) and the
            # gap between one finishing and the next one starting (admission + runner start).
            rows = sorted(PipelineExecution.objects.filter(name__in=names).values_list("started", "ended"))
            run_times += [(e - b).total_seconds() for b, e in rows if b and e]
            ends = sorted(e for _b, e in rows if e)
            handover += [(b - prev).total_seconds() for (b, _e), prev in zip(rows[2:], ends, strict=False)]
        out.update(total=totals, trigger=triggers, run_time=run_times, handover=handover)
    bell.close()
    out["runtimes"] = sorted(seen_runtimes)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(_driver(sys.argv[1:]))
