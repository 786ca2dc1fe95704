"""Retention of finished runs' directories (SLIPWAY_RUN_RETENTION; devops/controller/prune.py).

The real local engine (dummy runtime): a finished run keeps its run directory
until the retention ends, then the run directory and workspace go while the
step logs stay; active runs, pending stops and live runners are never pruned.
"""
from __future__ import annotations

import os
import time
from datetime import timedelta

from django.utils import timezone

from devops.controller.loop import Controller
from devops.controller.prune import prune_finished, tick_prune
from devops.engines.local.engine import LocalEngine
from devops.logs import LogKey, get_log_store
from devops.models import ExecutionState as S
from devops.models import PipelineExecution, StepStatus

from .conftest import make_config, new_execution
from .test_reliability import wait_until

HOUR = 3600.0


def finish_one(c: Controller, pipeline, **env) -> PipelineExecution:
    ex = new_execution(pipeline, make_config([{"SLIPWAY_DUMMY_OUTPUT": "hello", **env}]))
    assert wait_until(lambda: PipelineExecution.objects.get(pk=ex.pk).is_finished, 20, c.tick)
    ex.refresh_from_db()
    return ex


def age(path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_finished_runs_are_pruned_after_the_retention_and_logs_stay(project, pipeline, settings):
    engine = LocalEngine(step_runtime="dummy")
    c = Controller(engine)
    try:
        ex = finish_one(c, pipeline)
        rd, ws = engine.run_dir(ex.name), engine.workspace(ex.name)
        ws.mkdir(parents=True, exist_ok=True)  # as a cleanup that failed would leave it
        assert (rd / "state.json").exists()
        assert prune_finished(engine, 24 * HOUR) == 0  # just finished: kept
        assert rd.exists()

        PipelineExecution.objects.filter(pk=ex.pk).update(ended=timezone.now() - timedelta(hours=25))
        assert prune_finished(engine, 24 * HOUR) == 1
        assert not rd.exists() and not ws.exists()
        assert b"hello" in get_log_store().read(LogKey(ex.name, 1, 0))  # logs stay
        assert StepStatus.objects.filter(execution=ex).exists()
        assert prune_finished(engine, 24 * HOUR) == 0  # idempotent
    finally:
        c.close_wakeups()


def test_active_runs_pending_stops_and_live_runners_are_kept(project, pipeline, settings):
    engine = LocalEngine(step_runtime="dummy")
    c = Controller(engine)
    try:
        running = new_execution(pipeline, make_config([{"SLIPWAY_DUMMY_SLEEP": "60"}]))
        assert wait_until(lambda: StepStatus.objects.filter(execution=running, stage_index=1,
                                                            state=S.BUILDING).exists(), 10, c.tick)
        rd = engine.run_dir(running.name)
        age(rd, 48 * HOUR)
        assert prune_finished(engine, HOUR) == 0 and rd.exists()  # Building

        # Finished long ago in the database but its runner still runs (or its stop is pending): kept.
        PipelineExecution.objects.filter(pk=running.pk).update(
            execution_state=S.ABORTED, ended=timezone.now() - timedelta(hours=48), abort_requested=True)
        assert prune_finished(engine, HOUR) == 0 and rd.exists()
        PipelineExecution.objects.filter(pk=running.pk).update(abort_requested=False)
        assert prune_finished(engine, HOUR) == 0 and rd.exists()  # runner alive: engine.prune refuses
        PipelineExecution.objects.filter(pk=running.pk).update(execution_state=S.BUILDING, ended=None)
        from devops.controller.actions import do_stop

        assert do_stop(PipelineExecution.objects.get(pk=running.pk))
        # The controller stops the runner over a few passes (a stop never blocks a pass).
        assert wait_until(lambda: not PipelineExecution.objects.get(pk=running.pk).abort_requested, 10, c.tick)
        PipelineExecution.objects.filter(pk=running.pk).update(ended=timezone.now() - timedelta(hours=48))
        assert prune_finished(engine, HOUR) == 1 and not rd.exists()
    finally:
        c.close_wakeups()


def test_orphans_and_reruns_set_aside_go_by_their_age(project, pipeline, settings):
    engine = LocalEngine(step_runtime="dummy")
    c = Controller(engine)
    try:
        ex = finish_one(c, pipeline)
        root = engine.options.runs_root
        orphan = root / "p-gone-3"  # its pipeline was deleted: no row
        orphan.mkdir(mode=0o700)
        (orphan / "state.json").write_text("{}")
        old = root / f"{ex.name}.1700000000000.old"  # set aside by a rerun
        old.mkdir(mode=0o700)
        assert prune_finished(engine, HOUR) == 0  # all fresh
        age(orphan, 2 * HOUR)
        age(old, 2 * HOUR)
        assert prune_finished(engine, HOUR) == 2
        assert not orphan.exists() and not old.exists() and engine.run_dir(ex.name).exists()
    finally:
        c.close_wakeups()


def test_the_controller_prunes_once_per_interval(project, pipeline, settings):
    settings.SLIPWAY_RUN_RETENTION = 0.0
    engine = LocalEngine(step_runtime="dummy")
    c = Controller(engine)
    try:
        # No prune while the run is driven to its end (a pass right after the finish would prune
        # it already, retention being 0): the pass asserted below is the one that may.
        c._next_prune = float("inf")
        ex = finish_one(c, pipeline)
        rd = engine.run_dir(ex.name)
        assert rd.exists()
        c._next_prune = 0.0
        PipelineExecution.objects.filter(pk=ex.pk).update(ended=timezone.now() - timedelta(seconds=1))
        assert c.tick() is True and not rd.exists()  # tick() calls tick_prune
        assert tick_prune(c) is False  # not again before PRUNE_INTERVAL
    finally:
        c.close_wakeups()


def test_retention_setting_is_a_duration(monkeypatch):
    import pytest
    from django.core.exceptions import ImproperlyConfigured

    from devops.env import envduration

    for raw, seconds in (("24h", 86400), ("30m", 1800), ("7d", 604800), ("90s", 90), ("2", 7200), ("0", 0)):
        monkeypatch.setenv("SLIPWAY_RUN_RETENTION", raw)
        assert envduration("SLIPWAY_RUN_RETENTION", "24h") == seconds
    for bad in ("-1h", "soon", "h", "inf", "nan"):
        monkeypatch.setenv("SLIPWAY_RUN_RETENTION", bad)
        with pytest.raises(ImproperlyConfigured, match="SLIPWAY_RUN_RETENTION"):
            envduration("SLIPWAY_RUN_RETENTION", "24h")
