"""One way to change state: the do_* actions, through the one transition table; finished is final."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from devops.controller.actions import do_finish, do_report, do_stop
from devops.controller.loop import Controller
from devops.engines.base import RunReport, StepReport
from devops.engines.local import state as st
from devops.engines.local.engine import LocalEngine
from devops.models import ExecutionState as S
from devops.models import PipelineExecution, StageStatus, StepStatus

from .conftest import make_config, new_execution
from .test_reliability import wait_until


@pytest.fixture
def controller(engine, data_dir):
    c = Controller(engine)
    yield c
    c.close_wakeups()


def snapshot(ex):
    row = PipelineExecution.objects.get(pk=ex.pk)
    return (row.execution_state, row.ended, row.error,
            list(StageStatus.objects.filter(execution=ex).values_list("state", "ended")),
            list(StepStatus.objects.filter(execution=ex).values_list("state", "ended", "message", "exit_code")))


def late_report(ex, state: str) -> RunReport:
    steps = tuple(StepReport(stage=s.stage_index, step=s.index, state=state, started=time.time(),
                             ended=time.time(), exit_code=0 if state == S.SUCCESS else 9, message="late")
                  for s in StepStatus.objects.filter(execution=ex))
    return RunReport(state=state, steps=steps, ended=time.time())


@pytest.mark.parametrize("final", [S.SUCCESS, S.FAILED, S.ABORTED])
def test_a_finished_execution_is_never_changed_again(project, pipeline, engine, controller, final):
    engine.duration = 3600
    ex = new_execution(pipeline, make_config([{}, {}]))
    controller.tick()
    controller.tick_sync()
    if final == S.ABORTED:
        assert do_stop(ex)
        controller.tick_abort()
    else:
        engine.finish(ex.name, final)
        controller.tick_sync()
    before = snapshot(ex)
    assert before[0] == final
    # A late report (the engine's, another controller's), a stop, another finish: nothing changes.
    other = S.FAILED if final == S.SUCCESS else S.SUCCESS
    assert not do_report(ex, late_report(ex, other))
    assert not do_stop(ex)
    assert not do_finish(ex, S.FAILED, error="too late")
    controller.tick()
    assert snapshot(ex) == before


def test_after_a_stop_the_engine_s_final_report_does_not_rewrite_the_steps(
        project, pipeline, engine, controller):
    """The runner finished its steps just before the stop reached it: the run stays as stopped."""
    engine.duration = 3600
    ex = new_execution(pipeline, make_config([{}]))
    controller.tick()
    controller.tick_sync()
    assert do_stop(ex)
    stopped = snapshot(ex)
    assert set(s[0] for s in stopped[4]) == {S.ABORTED}
    engine.finish(ex.name, S.SUCCESS)  # what sync() would now say: every step Success
    assert controller.tick_abort()
    assert snapshot(ex) == stopped
    assert not PipelineExecution.objects.get(pk=ex.pk).abort_requested


def test_a_step_only_moves_along_the_transition_table(project, pipeline, engine, controller):
    engine.duration = 3600
    ex = new_execution(pipeline, make_config([{}]))
    controller.tick()
    steps = StepStatus.objects.filter(execution=ex)
    assert do_report(ex, late_report(ex, S.SUCCESS))
    assert set(steps.values_list("state", flat=True)) == {S.SUCCESS}
    # A stale report saying Building again must not move finished steps back.
    back = RunReport(state=S.BUILDING, steps=tuple(
        StepReport(stage=s.stage_index, step=s.index, state=S.BUILDING) for s in steps))
    assert do_report(ex, back)
    assert set(steps.values_list("state", flat=True)) == {S.SUCCESS}


def test_admin_shows_state_read_only(project, pipeline, engine, controller, client, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "root-pw")
    client.force_login(admin)
    ex = new_execution(pipeline, make_config([{}]))
    url = f"/admin/devops/pipelineexecution/{ex.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    for name in ("execution_state", "engine_handle", "abort_requested", "controller_node", "unit_attempts"):
        assert name not in form.fields, name
    assert "Waiting" in page.content.decode()  # shown, not editable
    data = {k: v for k, v in form.initial.items() if k in form.fields and v is not None}
    data.update({"execution_state": S.SUCCESS, "abort_requested": "on", "message": "edited",
                 "stages-TOTAL_FORMS": "0", "stages-INITIAL_FORMS": "0"})
    data["config"] = "{}"
    data["conditions"] = "[]"
    data["project"] = project.pk
    data["pipeline"] = pipeline.pk
    client.post(url, data)
    row = PipelineExecution.objects.get(pk=ex.pk)
    assert row.execution_state == S.WAITING and not row.abort_requested
    step = StepStatus.objects.filter(execution=ex).first()
    step_form = client.get(f"/admin/devops/stepstatus/{step.pk}/change/").context["adminform"].form
    assert "state" not in step_form.fields and "exit_code" not in step_form.fields
    # Rows are made by the actions only (run number, stage and step rows).
    assert client.get("/admin/devops/pipelineexecution/add/").status_code == 403
    assert client.get("/admin/devops/stepstatus/add/").status_code == 403
    stage_page = client.get(url)
    inline = stage_page.context["inline_admin_formsets"][0].formset.forms[0]
    assert "state" not in inline.fields


def test_a_stop_of_an_unresponsive_runner_never_blocks_a_pass(project, pipeline, data_dir):
    """The runner ignores SIGTERM (stopped with SIGSTOP); the stop's grace period is an hour.

    The pass returns at once with the stop pending; other work goes on; once
    the grace period has run out (its start is the stop file's mtime, moved
    back here instead of waiting), a later pass kills the runner and frees the slot.
    """
    engine = LocalEngine(step_runtime="dummy", stop_grace=3600)
    c = Controller(engine)
    ex = new_execution(pipeline, make_config([{"SLIPWAY_DUMMY_SLEEP": "60"}]))
    assert wait_until(lambda: StepStatus.objects.filter(execution=ex, stage_index=1, state=S.BUILDING).exists(),
                      10, c.tick)
    handle = PipelineExecution.objects.get(pk=ex.pk).engine_handle
    info = st.read_json(Path(handle["run_dir"]) / "runner.json")
    os.kill(int(info["pid"]), signal.SIGSTOP)
    try:
        assert do_stop(ex)
        other = new_execution(pipeline, make_config([{}]))
        c.tick()
        # The pass is over while the runner is still alive within its grace period...
        assert st.runner_alive(info)
        assert PipelineExecution.objects.get(pk=ex.pk).abort_requested
        # ...and the rest of the pass went on: the next run was started.
        assert PipelineExecution.objects.get(pk=other.pk).execution_state != S.WAITING
        c.tick()
        assert st.runner_alive(info) and PipelineExecution.objects.get(pk=ex.pk).abort_requested
        stop_file = Path(handle["run_dir"]) / "stop"
        past = stop_file.stat().st_mtime - 3601
        os.utime(stop_file, (past, past))
        c.tick()
        assert not PipelineExecution.objects.get(pk=ex.pk).abort_requested
        assert wait_until(lambda: not st.runner_alive(info), 10)
        assert PipelineExecution.objects.get(pk=ex.pk).execution_state == S.ABORTED
    finally:
        st.kill_session(int(info["sid"]))
        c.close_wakeups()
