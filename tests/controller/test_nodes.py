"""Several controllers on several nodes (the real local engine, dummy steps, one data dir per node).

Each execution records the node whose controller started its runner; only
that node syncs and stops it. Another node takes over only when the owner's
heartbeat is older than SLIPWAY_NODE_TIMEOUT: it adopts the run if its
engine can reach the runner, else fails it with "runner's node <name> lost".
Runs on the suite's database: CI runs it on PostgreSQL and on SQLite.
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from devops.controller.loop import Controller
from devops.engines.local import state as st
from devops.engines.local.engine import LocalEngine
from devops.models import ControllerNode, PipelineExecution, StepStatus
from devops.models import ExecutionState as S

from .conftest import make_config, new_execution
from .test_reliability import wait_until


@pytest.fixture
def node(data_dir, tmp_path):
    """node(name, data_dir=None) -> a Controller of that node with its own data dir (or a shared one)."""
    made: list[Controller] = []

    def make(name: str, shared: Path | None = None) -> Controller:
        d = shared or tmp_path / f"node-{name}"
        d.mkdir(exist_ok=True)
        engine = LocalEngine(step_runtime="dummy", data_dir=d, workspace_dir=d / "workspaces")
        c = Controller(engine, data_dir=d, node=name, node_timeout=60)
        c.heartbeat(force=True)
        made.append(c)
        return c

    yield make
    for c in made:  # no runner outlives the test
        for row in PipelineExecution.objects.exclude(engine_handle={}):
            if row.engine_handle.get("sid") and Path(row.engine_handle.get("run_dir", "")).is_relative_to(
                    c.engine.options.runs_root):
                st.kill_session(int(row.engine_handle["sid"]))
        c.close_wakeups()


def state(e) -> str:
    return PipelineExecution.objects.get(pk=e.pk).execution_state


def make_stale(name: str, by: float = 1.0) -> None:
    ControllerNode.objects.filter(name=name).update(
        heartbeat_at=timezone.now() - timedelta(seconds=60 + by))


def test_two_nodes_never_fail_each_others_healthy_runs(project, pipeline, node):
    project.settings.filter(name="executor-quota").update(value="4")
    a, b = node("node-a"), node("node-b")
    config = make_config([{"SLIPWAY_DUMMY_SLEEP": "0.3"}])
    on_b = [new_execution(pipeline, config) for _ in range(2)]
    b.tick()
    on_a = [new_execution(pipeline, config) for _ in range(2)]
    a.tick()
    assert {PipelineExecution.objects.get(pk=e.pk).controller_node for e in on_b} == {"node-b"}
    assert {PipelineExecution.objects.get(pk=e.pk).controller_node for e in on_a} == {"node-a"}

    def both():
        for c in (a, b):
            c.tick()
            c.heartbeat()

    everything = on_a + on_b
    assert wait_until(lambda: all(PipelineExecution.objects.get(pk=e.pk).is_finished for e in everything), 60, both)
    assert [state(e) for e in everything] == [S.SUCCESS] * 4, [
        (e.name, state(e), PipelineExecution.objects.get(pk=e.pk).error) for e in everything]


def test_a_stale_node_s_runs_fail_with_the_reason_only_after_the_timeout(project, pipeline, node):
    a, b = node("node-a"), node("node-b")
    ex = new_execution(pipeline, make_config([{"SLIPWAY_DUMMY_SLEEP": "60"}]))
    assert wait_until(lambda: StepStatus.objects.filter(execution=ex, stage_index=1, state=S.BUILDING).exists(),
                      10, a.tick)
    # A stops ticking (its machine is gone). Within the timeout, B leaves the run alone.
    make_stale("node-a", by=-5.0)
    for _ in range(3):
        b.tick()
    assert state(ex) == S.BUILDING
    # A's heartbeat is now older than the timeout: B cannot reach the runner (another data dir).
    make_stale("node-a")
    b.tick()
    row = PipelineExecution.objects.get(pk=ex.pk)
    assert row.execution_state == S.FAILED and row.error == "runner's node node-a lost"
    assert StepStatus.objects.get(execution=ex, stage_index=1).state == S.FAILED


def test_a_stale_node_s_run_is_adopted_when_the_engine_still_reaches_it(project, pipeline, node, tmp_path):
    shared = tmp_path / "shared-data"
    a = node("node-a", shared)
    ex = new_execution(pipeline, make_config([{"SLIPWAY_DUMMY_SLEEP": "0.3"}]))
    a.tick()
    assert PipelineExecution.objects.get(pk=ex.pk).controller_node == "node-a"
    make_stale("node-a")
    b = node("node-b", shared)  # e.g. the same machine's controller, restarted under a new name
    assert wait_until(lambda: PipelineExecution.objects.get(pk=ex.pk).is_finished, 30, b.tick)
    row = PipelineExecution.objects.get(pk=ex.pk)
    assert (row.execution_state, row.controller_node) == (S.SUCCESS, "node-b")


def test_only_the_owner_stops_a_run_and_a_lost_node_s_stop_frees_the_slot(project, pipeline, node):
    from devops.controller.actions import do_stop

    a, b = node("node-a"), node("node-b")
    ex = new_execution(pipeline, make_config([{"SLIPWAY_DUMMY_SLEEP": "60"}]))
    a.tick()
    pid = int(PipelineExecution.objects.get(pk=ex.pk).engine_handle["pid"])
    assert do_stop(ex)
    b.tick()
    assert PipelineExecution.objects.get(pk=ex.pk).abort_requested  # not B's to stop
    info = st.read_json(Path(PipelineExecution.objects.get(pk=ex.pk).engine_handle["run_dir"]) / "runner.json")
    assert info["pid"] == pid and st.runner_alive(info)
    make_stale("node-a")
    b.tick()
    assert not PipelineExecution.objects.get(pk=ex.pk).abort_requested
    assert state(ex) == S.ABORTED


def test_a_node_is_seen_alive_before_it_owns_a_run(project, pipeline, engine, data_dir):
    """The first start writes the node's heartbeat row: no other node takes it for lost meanwhile."""
    c = Controller(engine, node="fresh-node")
    assert not ControllerNode.objects.filter(name="fresh-node").exists()
    ex = new_execution(pipeline)
    engine.duration = 3600
    c.tick_admit()
    row = PipelineExecution.objects.get(pk=ex.pk)
    assert (row.execution_state, row.controller_node) == (S.BUILDING, "fresh-node")
    assert ControllerNode.objects.get(name="fresh-node").heartbeat_at >= row.created
    other = Controller(engine, node="other-node")
    other.tick()
    assert PipelineExecution.objects.get(pk=ex.pk).execution_state == S.BUILDING
    c.close_wakeups()
    other.close_wakeups()


def test_every_pass_of_the_loop_beats_the_node_s_heartbeat_row(project, pipeline, engine, data_dir, settings):
    settings.SLIPWAY_NODE_NAME = "beating-node"
    c = Controller(engine)
    old = timezone.now() - timedelta(hours=1)
    ControllerNode.objects.create(name="beating-node", heartbeat_at=old)
    c.run_forever(once=True)
    assert ControllerNode.objects.get(name="beating-node").heartbeat_at > old
