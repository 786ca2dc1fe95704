"""Controller ticks against an in-process engine: quota, admission order, sync, stop, crash points."""
from __future__ import annotations

import time

import pytest

from devops.controller.actions import do_stop
from devops.controller.loop import Controller
from devops.models import ExecutionState as S
from devops.models import PipelineExecution, StageStatus, StepStatus

from .conftest import make_config, new_execution


def states(*executions):
    return [PipelineExecution.objects.get(pk=e.pk).execution_state for e in executions]


def set_quota(project, n: int):
    project.settings.filter(name="executor-quota").update(value=str(n))


@pytest.fixture
def controller(engine, data_dir):
    c = Controller(engine)
    yield c
    c.close_wakeups()


def test_over_quota_queues_and_finished_admits_oldest_queued(project, pipeline, engine, controller):
    engine.duration = 3600
    set_quota(project, 2)
    e = [new_execution(pipeline) for _ in range(4)]
    assert controller.tick_admit()
    assert states(*e) == [S.BUILDING, S.BUILDING, S.QUEUEING, S.QUEUEING]
    assert engine.deployed == [project.id]  # once per project
    engine.finish(e[0].name, S.SUCCESS)
    assert controller.tick_sync()
    # The freed slot is taken in the same pass: admitted and handed to the engine
    # before the finished run is cleaned up.
    assert states(*e) == [S.SUCCESS, S.BUILDING, S.BUILDING, S.QUEUEING]
    row = PipelineExecution.objects.get(pk=e[2].pk)
    assert row.engine == "fake"
    initialized = [c for c in row.conditions if c["type"] == "Initialized"]
    assert initialized[-1]["status"] == "True"
    assert controller.tick_admit() is False  # nothing left to do: the quota is full
    assert states(*e) == [S.SUCCESS, S.BUILDING, S.BUILDING, S.QUEUEING]
    assert engine.cleaned[e[0].name] == 1
    assert sum(engine.starts.values()) == 3


def test_sync_copies_step_and_stage_states_and_pipeline_status(project, pipeline, engine, controller):
    ex = new_execution(pipeline, make_config([{}, {"EXIT": "3"}], [{}]))
    controller.tick_admit()
    row = PipelineExecution.objects.get(pk=ex.pk)
    assert row.execution_state == S.BUILDING and row.engine_handle == {"fake": ex.name}
    assert row.conditions[-1]["type"] == "Initialized" and row.conditions[-1]["status"] == "True"
    assert controller.tick_sync()
    row.refresh_from_db()
    assert row.execution_state == S.FAILED and row.ended is not None and row.node == "fake-node"
    steps = {(s.stage_index, s.index): s for s in StepStatus.objects.filter(execution=ex)}
    assert steps[1, 1].state == S.FAILED and steps[1, 1].exit_code == 3 and steps[1, 1].runtime == "fake"
    assert steps[0, 0].state == S.SUCCESS
    assert list(StageStatus.objects.filter(execution=ex).values_list("state", flat=True)) == [
        S.SUCCESS, S.FAILED, S.SUCCESS]
    pipeline.refresh_from_db()
    assert (pipeline.last_execution_id, pipeline.last_run_state) == (ex.name, S.FAILED)
    assert pipeline.execution_scheduled_info == ["fake-node"]
    # Finished is final: further passes change nothing.
    assert not controller.tick_sync() and not controller.tick_admit()


def test_unchanged_sync_costs_no_write(project, pipeline, engine, controller, django_assert_num_queries):
    engine.duration = 3600
    new_execution(pipeline)
    controller.tick_admit()
    assert controller.tick_sync()          # first report: written
    with django_assert_num_queries(1):     # the active list only
        assert not controller.tick_sync()


def test_tick_queries_do_not_grow_with_history(project, pipeline, engine, controller,
                                               django_assert_max_num_queries):
    engine.duration = 3600
    for _ in range(3):
        new_execution(pipeline)
    controller.tick()

    def one_pass_queries() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            controller.tick()
        return len(ctx.captured_queries)

    baseline = one_pass_queries()
    # 500 finished executions of history.
    PipelineExecution.objects.bulk_create(
        PipelineExecution(project=project, pipeline=pipeline, name=f"old-{i}", run=1000 + i,
                          execution_state=S.SUCCESS, engine="fake", config={})
        for i in range(500))
    with django_assert_max_num_queries(baseline):
        controller.tick()


def test_stop_building_marks_aborted_and_controller_stops_runner(project, pipeline, engine, controller):
    engine.duration = 3600
    set_quota(project, 1)
    a, b = new_execution(pipeline), new_execution(pipeline)
    controller.tick()
    controller.tick_sync()
    assert StepStatus.objects.filter(execution=a, state=S.BUILDING).count() == 2
    assert do_stop(a)
    a.refresh_from_db()
    assert a.execution_state == S.ABORTED and a.abort_requested
    assert StepStatus.objects.filter(execution=a, state=S.ABORTED).count() == 2
    assert StageStatus.objects.filter(execution=a, state=S.BUILDING).count() == 0
    # The slot stays taken until the runner is stopped.
    controller.tick_admit()
    assert states(b) == [S.QUEUEING]
    assert controller.tick_abort()
    assert engine.stopped[a.name] == 1 and engine.cleaned[a.name] == 1
    a.refresh_from_db()
    assert not a.abort_requested
    controller.tick_admit()
    assert states(a, b) == [S.ABORTED, S.BUILDING]
    assert not do_stop(a)  # already finished: nothing to do


def test_stop_waiting_needs_no_engine(project, pipeline, engine, controller):
    set_quota(project, 0)
    e = new_execution(pipeline)
    controller.tick_admit()
    assert states(e) == [S.QUEUEING]
    assert do_stop(e)
    e.refresh_from_db()
    assert e.execution_state == S.ABORTED and not e.abort_requested
    assert not controller.tick_abort()
    assert engine.run_calls[e.name] == 0


def test_crash_between_run_and_storing_handle_does_not_start_twice(project, pipeline, engine, data_dir):
    e = new_execution(pipeline)
    first = Controller(engine)
    first.admit_project(project.id)
    # The "dead" controller got as far as engine.run() but stored nothing.
    engine.run(first.spec_for(PipelineExecution.objects.get(pk=e.pk)))
    assert states(e) == [S.WAITING]
    second = Controller(engine)   # the restarted controller
    second.tick()
    assert states(e) == [S.SUCCESS]
    assert engine.run_calls[e.name] == 2 and engine.starts[e.name] == 1


def test_engine_not_ready_retries_later(project, pipeline, engine, controller):
    engine.ready = False
    e = new_execution(pipeline)
    controller.tick_admit()
    assert states(e) == [S.WAITING] and engine.run_calls[e.name] == 0
    engine.ready = True
    controller._retry_at.clear()
    controller.tick_admit()
    assert states(e) == [S.BUILDING]


def test_permanent_engine_error_fails_with_reason(project, pipeline, engine, controller):
    from devops.engines.base import PermanentEngineError

    def boom(spec):
        raise PermanentEngineError("no such image registry")

    engine.run = boom
    e = new_execution(pipeline)
    controller.tick_admit()
    e.refresh_from_db()
    assert e.execution_state == S.FAILED and e.error == "no such image registry"


def test_runner_died_reason_lands_on_error_and_step(project, pipeline, engine, controller):
    from devops.engines.base import RunReport, StepReport

    e = new_execution(pipeline)
    controller.tick_admit()
    engine.sync = lambda spec, handle: RunReport(
        state=S.FAILED, error="runner died (pid 4242, killed by signal 9)", ended=time.time(),
        steps=(StepReport(0, 0, S.SUCCESS), StepReport(1, 0, S.BUILDING, started=time.time())))
    controller.tick_sync()
    e.refresh_from_db()
    assert e.execution_state == S.FAILED and "runner died" in e.error
    step = StepStatus.objects.get(execution=e, stage_index=1)
    assert step.state == S.FAILED and "runner died" in step.message


def test_doorbell_wakes_the_controller_at_once(project, pipeline, engine, controller, data_dir):
    import threading

    from devops.doorbell import ring

    controller.open_wakeups()
    assert not controller.wait(0.05)  # nothing rang: wait() says it timed out
    threading.Timer(0.05, ring, args=(data_dir,)).start()
    # wait() sleeps at most 1 s and says whether it was woken: the ring must wake one of them
    assert any(controller.wait(1.0) for _ in range(30))
    assert not controller.wait(0.05)  # drained: no ring pending


@pytest.mark.django_db(transaction=True)
def test_notify_wakes_a_controller_on_postgresql(engine, data_dir):
    from django.db import connection

    from devops.controller.actions import NOTIFY_CHANNEL

    if connection.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    c = Controller(engine)
    c.open_wakeups()
    assert c._listen is not None
    with connection.cursor() as cur:
        cur.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])
    assert any(c.wait(1.0) for _ in range(30))  # True: the notification woke it (a timeout returns False)
    assert not c.wait(0.05)  # drained
    c.close_wakeups()


def test_every_change_is_announced_after_commit(project, pipeline, engine, controller,
                                                django_capture_on_commit_callbacks):
    from devops.controller.actions import execution_changed

    seen = []

    def receiver(sender, execution, project_id, state, **kw):
        seen.append((execution, state))

    execution_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            e = new_execution(pipeline)
            controller.tick()
    finally:
        execution_changed.disconnect(receiver)
    assert seen[0] == (e.name, S.WAITING) and seen[-1] == (e.name, S.SUCCESS)
    assert (e.name, S.BUILDING) in seen
