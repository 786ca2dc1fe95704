"""The Jenkins engine driven by the controller's ticks (CONTRIBUTING: adding an engine, 4), against the fake Jenkins."""
from __future__ import annotations

import pytest

from devops.controller.actions import do_stop
from devops.controller.loop import Controller
from devops.engines.jenkins.engine import JenkinsEngine
from devops.engines.jenkins.jenkinsfile import job_name
from devops.engines.jenkins.options import JenkinsOptions
from devops.models import ExecutionState as S
from devops.models import Pipeline, PipelineExecution, StepStatus
from tests.controller.conftest import data_dir, make_config, new_execution, pipeline  # noqa: F401 (fixtures)


@pytest.fixture
def controller(fake, data_dir):  # noqa: F811
    from devops.logs import get_log_store

    engine = JenkinsEngine(JenkinsOptions(url=fake.url, user=fake.user, token=fake.token),
                           store=get_log_store())
    c = Controller(engine)
    yield c
    c.close_wakeups()


def test_ticks_run_sync_and_record_the_node_for_cache_affinity(project, pipeline, fake, controller):  # noqa: F811
    Pipeline.objects.filter(pk=pipeline.pk).update(execution_scheduled_info=["node-old"])
    ex = new_execution(pipeline, make_config([{}]))
    assert controller.tick_admit()
    row = PipelineExecution.objects.get(pk=ex.pk)
    job = job_name(ex.name)
    assert row.execution_state == S.BUILDING and row.engine_handle["job"] == job
    assert "GET /me/api/json" in fake.requests            # deploy() checked the connection
    # The previous node is preferred by the agent pod (weight 100).
    assert "- node-old" in fake.jobs[job].config
    fake.start(job)
    fake.set_step(job, "step-0-0", "SUCCESS")
    fake.set_step(job, "step-1-0", "IN_PROGRESS")
    fake.append_log(job, "step-1-0", b"hello\n")
    assert controller.tick_sync()
    step = StepStatus.objects.get(execution=row, stage_index=1, index=0)
    assert step.state == S.BUILDING and step.log_size == len(b"hello\n")
    fake.set_step(job, "step-1-0", "SUCCESS")
    fake.finish(job, "SUCCESS", node="node-new")
    assert controller.tick_sync()
    row.refresh_from_db()
    assert row.execution_state == S.SUCCESS and row.node == "node-new"
    assert Pipeline.objects.get(pk=pipeline.pk).execution_scheduled_info == ["node-new", "node-old"]


def test_abort_through_the_controller_reaches_jenkins(project, pipeline, fake, controller):  # noqa: F811
    ex = new_execution(pipeline, make_config([{}]))
    controller.tick_admit()
    job = job_name(ex.name)
    fake.start(job)
    fake.set_step(job, "step-1-0", "IN_PROGRESS")
    controller.tick_sync()
    assert do_stop(PipelineExecution.objects.get(pk=ex.pk))
    controller.tick_abort()
    assert f"/job/{job}/1/stop" in fake.posts
