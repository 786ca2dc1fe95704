"""Reliability with the real local engine (dummy step runtime), in this process.

Bursts against the quota with two controllers interleaved, and a runner
killed with SIGKILL. The multi-process versions (two `runcontroller`
processes, kill -9 of a controller) are in test_live.py.
"""
from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import ClassVar

import pytest

from devops.controller.loop import Controller, count_slot_holders
from devops.engines.local.engine import LocalEngine
from devops.models import ExecutionState as S
from devops.models import PipelineExecution, StepStatus

from .conftest import make_config, new_execution


class CountingEngine(LocalEngine):
    """The local engine, counting successful run() calls per execution across instances.

    (A run() that raised is retried by design; two that succeeded would mean
    two controllers claimed the same execution.)
    """

    calls: ClassVar[Counter[str]] = Counter()

    def run(self, spec):
        handle = super().run(spec)
        CountingEngine.calls[spec.execution] += 1
        return handle


@pytest.fixture
def local_engine(data_dir):
    CountingEngine.calls = Counter()
    engines = []

    def make():
        e = CountingEngine(step_runtime="dummy")
        engines.append(e)
        return e

    yield make


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except FileNotFoundError:
        return True


def wait_until(predicate, timeout: float, step=None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if step is not None:
            step()
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_burst_of_20_with_quota_2_and_two_controllers(project, pipeline, local_engine):
    project.settings.filter(name="executor-quota").update(value="2")
    config = make_config([{"SLIPWAY_DUMMY_SLEEP": "0.05", "SLIPWAY_DUMMY_OUTPUT": "once"}])
    executions = [new_execution(pipeline, config) for _ in range(20)]
    a, b = Controller(local_engine()), Controller(local_engine())
    peak = 0

    def both():
        nonlocal peak
        for c in (a, b):
            c.tick()
            holders = count_slot_holders(project.id)
            peak = max(peak, holders)
            assert holders <= 2
            assert PipelineExecution.objects.filter(
                project=project, execution_state=S.BUILDING).count() <= 2

    def done():
        return not PipelineExecution.objects.filter(execution_state__in=list(S.active())).exists()
    assert wait_until(done, 90, both), list(PipelineExecution.objects.values_list("name", "execution_state"))
    assert peak == 2, peak
    assert set(PipelineExecution.objects.values_list("execution_state", flat=True)) == {S.SUCCESS}
    # Each execution was handed to the engine exactly once, by one of the two controllers.
    assert CountingEngine.calls == Counter({e.name: 1 for e in executions})
    from devops.logs import LogKey, get_log_store

    store = get_log_store()
    assert all(store.read(LogKey(e.name, 1, 0)).count(b"once") == 1 for e in executions)
    # Admission is FIFO: runs started in creation order.
    started = list(PipelineExecution.objects.order_by("started", "id").values_list("run", flat=True))
    assert started == sorted(started), started
    a.close_wakeups()
    b.close_wakeups()


def test_runner_killed_with_sigkill_fails_with_the_reason(project, pipeline, local_engine):
    c = Controller(local_engine())
    ex = new_execution(pipeline, make_config([{"SLIPWAY_DUMMY_SLEEP": "60"}]))
    c.tick()
    ex.refresh_from_db()
    assert ex.execution_state == S.BUILDING
    assert wait_until(lambda: StepStatus.objects.filter(execution=ex, stage_index=1, state=S.BUILDING).exists(),
                      10, c.tick)
    os.kill(int(ex.engine_handle["pid"]), signal.SIGKILL)
    assert wait_until(lambda: PipelineExecution.objects.get(pk=ex.pk).is_finished, 10, c.tick)
    ex.refresh_from_db()
    assert ex.execution_state == S.FAILED and "died" in ex.error
    step = StepStatus.objects.get(execution=ex, stage_index=1)
    assert step.state == S.FAILED and "died" in step.message
    c.close_wakeups()


def test_stop_kills_running_steps(project, pipeline, local_engine):
    from devops.controller.actions import do_stop

    c = Controller(local_engine())
    ex = new_execution(pipeline, make_config([{"SLIPWAY_DUMMY_SLEEP": "60"}, {"SLIPWAY_DUMMY_SLEEP": "60"}]))
    assert wait_until(lambda: StepStatus.objects.filter(execution=ex, stage_index=1, state=S.BUILDING).count() == 2,
                      10, c.tick)
    assert do_stop(ex)
    # The runner aborts on SIGTERM; the controller only asks and looks again on later passes.
    assert wait_until(lambda: not PipelineExecution.objects.get(pk=ex.pk).abort_requested, 10, c.tick)
    ex.refresh_from_db()
    assert ex.execution_state == S.ABORTED
    pid = int(ex.engine_handle["pid"])
    assert wait_until(lambda: gone(pid), 5)
    assert list(StepStatus.objects.filter(execution=ex, stage_index=1).values_list("state", flat=True)) == [
        S.ABORTED, S.ABORTED]
    assert StepStatus.objects.get(execution=ex, stage_index=0).state == S.SUCCESS  # the clone had finished
    c.close_wakeups()


def test_runcontroller_once_and_until_idle(project, pipeline, data_dir, settings):
    import signal as sig

    from django.core.management import call_command

    settings.SLIPWAY_STEP_RUNTIME = "dummy"
    handler = sig.getsignal(sig.SIGTERM)
    ex = new_execution(pipeline, make_config([{"SLIPWAY_DUMMY_SLEEP": "0.2"}]))
    call_command("runcontroller", "--once")
    ex.refresh_from_db()
    assert ex.execution_state == S.BUILDING
    call_command("runcontroller", "--until-idle")  # returning at all is the point: it stops when idle
    ex.refresh_from_db()
    assert ex.execution_state == S.SUCCESS
    assert sig.getsignal(sig.SIGTERM) is handler  # the command restores what it replaced


@pytest.mark.django_db(transaction=True)
def test_embedded_controller_thread_runs_executions(project, pipeline, data_dir, settings, caplog):
    """The controller thread of the web process runs an execution to its end.

    This test used to flake with "database table is locked": pytest-django's
    in-memory SQLite is one shared cache for all threads, where a write that
    meets another thread's read fails at once instead of waiting. The
    controller retried the pass, but its sync had already remembered the
    final report before `do_finish` was written, so the retry saw "nothing
    new" and the run stayed Building (fixed in loop.py; unit test:
    test_units.py::test_a_failed_finish_write_is_retried_next_pass). Here the
    test waits for the committed change (`execution_changed`, sent by the
    controller thread after commit) instead of reading the table while the
    controller writes it, and asserts the controller met no database error.
    """
    import threading

    from devops.controller import embedded
    from devops.controller.actions import execution_changed

    settings.SLIPWAY_STEP_RUNTIME = "dummy"
    settings.SLIPWAY_EMBEDDED_CONTROLLER = False
    assert embedded.start() is None
    settings.SLIPWAY_EMBEDDED_CONTROLLER = True
    ex = new_execution(pipeline, make_config([{"SLIPWAY_DUMMY_OUTPUT": "embedded"}]))
    finished = threading.Event()

    def on_change(sender, execution, state, **kwargs):
        if execution == ex.name and state in S.finished():
            finished.set()

    execution_changed.connect(on_change)
    thread = embedded.start()
    try:
        assert thread is embedded.start()  # once per process
        assert finished.wait(30)
    finally:
        embedded.stop()
        execution_changed.disconnect(on_change)
    assert not thread.is_alive()
    assert PipelineExecution.objects.get(pk=ex.pk).execution_state == S.SUCCESS
    problems = [r.getMessage() for r in caplog.records if r.name == "devops.controller" and r.levelname in
                ("WARNING", "ERROR")]
    assert problems == []
