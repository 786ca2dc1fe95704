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


def test_jobs_of_executions_past_the_retention_are_deleted_and_nothing_else(project, pipeline, fake,  # noqa: F811
                                                                            controller):
    import time
    from datetime import timedelta

    from django.utils import timezone

    from devops.controller.prune import prune_finished
    from devops.logs import LogKey, get_log_store
    from tests.engines.jenkins.fake import Build, Job

    hour = 3600.0
    engine = controller.engine
    ex = new_execution(pipeline, make_config([{}]))
    assert controller.tick_admit()
    job = job_name(ex.name)
    fake.start(job).start = int(time.time() * 1000)  # the run's times are Jenkins' (ended, too)
    for label in ("step-0-0", "step-1-0"):
        fake.set_step(job, label, "SUCCESS")
    fake.append_log(job, "step-1-0", b"kept in the log store\n")
    fake.finish(job, "SUCCESS")
    assert controller.tick_sync()
    assert PipelineExecution.objects.get(pk=ex.pk).execution_state == S.SUCCESS
    # Queued, not started yet (inQueue), though its row says it ended long ago: kept.
    queued = new_execution(pipeline, make_config([{}]))
    assert controller.tick_admit()
    PipelineExecution.objects.filter(pk=queued.pk).update(execution_state=S.FAILED,
                                                          ended=timezone.now() - timedelta(hours=5))
    # Jobs nobody's row names: an old finished one (its pipeline was deleted), an old one still
    # building (deleting it would abort the build), and a job Slipway did not create.
    fake.jobs["slipway-p-gone-3"] = Job("slipway-p-gone-3", "<x/>", builds=[Build(1, {}, status="SUCCESS")])
    fake.jobs["slipway-p-gone-4"] = Job("slipway-p-gone-4", "<x/>", builds=[Build(1, {})])
    fake.jobs["nightly-backup"] = Job("nightly-backup", "<x/>", builds=[Build(1, {}, status="SUCCESS")])

    assert sorted(e for e, _x, _m in engine.stored_runs()) == sorted(
        [ex.name, queued.name, "p-gone-3", "p-gone-4"])
    assert prune_finished(engine, hour) == 1                       # only the orphan: ex just ended
    assert set(fake.jobs) == {job, job_name(queued.name), "slipway-p-gone-4", "nightly-backup"}
    assert "/job/slipway-p-gone-3/doDelete" in fake.posts

    PipelineExecution.objects.filter(pk=ex.pk).update(ended=timezone.now() - timedelta(hours=2))
    assert prune_finished(engine, hour) == 1
    assert set(fake.jobs) == {job_name(queued.name), "slipway-p-gone-4", "nightly-backup"}
    assert b"kept in the log store" in get_log_store().read(LogKey(ex.name, 1, 0))  # Slipway's copy stays
    assert prune_finished(engine, hour) == 0                       # idempotent; the rest still kept
    assert engine.prune(ex.name) is True                           # already gone: nothing to do
    assert not any(p.endswith(("p-gone-4/doDelete", "nightly-backup/doDelete")) for p in fake.posts)
