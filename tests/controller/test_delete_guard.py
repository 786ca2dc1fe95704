"""Deleting a pipeline or project while a stop is pending is refused (issue 8, point 5).

The real local engine (dummy runtime): a run is stopped, and until the
controller has stopped its runner the execution row is the only way to find
it. A delete then would orphan the runner and leave spec.json (secrets).
"""
from __future__ import annotations

from rest_framework.test import APIClient

from devops.controller.actions import do_stop
from devops.controller.loop import Controller
from devops.engines.local.engine import LocalEngine
from devops.models import ExecutionState as S
from devops.models import Pipeline, PipelineExecution, Project, StepStatus

from .conftest import make_config, new_execution
from .test_reliability import gone, wait_until


def test_delete_with_a_pending_stop_is_refused_and_the_runner_is_not_orphaned(project, pipeline, personas):
    engine = LocalEngine(step_runtime="dummy")
    c = Controller(engine)
    try:
        ex = new_execution(pipeline, make_config([{"SLIPWAY_DUMMY_SLEEP": "60"}]))
        assert wait_until(lambda: StepStatus.objects.filter(execution=ex, stage_index=1, state=S.BUILDING).exists(),
                          10, c.tick)
        ex.refresh_from_db()
        pid = int(ex.engine_handle["pid"])
        run_dir = engine.run_dir(ex.name)
        assert do_stop(ex)
        ex.refresh_from_db()
        assert ex.execution_state == S.ABORTED and ex.abort_requested  # the controller has not acted yet

        client = APIClient()
        client.force_authenticate(personas["alice"])
        for url in (f"/api/v1/projects/{project.id}/pipelines/{pipeline.name}/", f"/api/v1/projects/{project.id}/"):
            response = client.delete(url)
            assert response.status_code == 409, response.content
            assert ex.name in response.json()["detail"] and "not yet stopped" in response.json()["detail"]
        assert Pipeline.objects.filter(pk=pipeline.pk).exists() and Project.objects.filter(pk=project.pk).exists()
        assert not gone(pid) and (run_dir / "spec.json").exists()

        # The controller asks the runner to stop and looks again on later passes (never blocking).
        assert wait_until(lambda: not PipelineExecution.objects.get(pk=ex.pk).abort_requested, 10, c.tick)
        assert wait_until(lambda: gone(pid), 10)
        assert not (run_dir / "spec.json").exists()
        assert client.delete(f"/api/v1/projects/{project.id}/pipelines/{pipeline.name}/").status_code == 204
    finally:
        c.close_wakeups()
