"""One bad row never stops the controller: each unit is isolated, retried with backoff, bounded."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from devops.controller.actions import UNIT_MAX_ATTEMPTS, unit_backoff
from devops.controller.loop import Controller
from devops.controller.projects import do_create_project
from devops.models import ExecutionState as S
from devops.models import Pipeline, PipelineExecution, SourceCodeCredential

from .conftest import make_config, new_execution


class Clock:
    """A controller clock the test moves by hand (no sleeping, no wall-clock thresholds)."""

    def __init__(self):
        self.t = timezone.now()

    def __call__(self):
        return self.t

    def advance(self, delta: timedelta) -> None:
        self.t += delta


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def controller(engine, data_dir, clock):
    c = Controller(engine, clock=clock)
    yield c
    c.close_wakeups()


def two_projects(project, data_dir):
    other = do_create_project("other")
    p1 = Pipeline.objects.create(project=project, repository_url="/nonexistent/a", default_branch="master")
    p2 = Pipeline.objects.create(project=other, repository_url="/nonexistent/b", default_branch="master")
    return p1, p2


def drive(controller, clock, passes: int) -> None:
    """`passes` controller passes, each after the longest backoff has elapsed."""
    for _ in range(passes):
        clock.advance(unit_backoff(UNIT_MAX_ATTEMPTS) + timedelta(seconds=1))
        controller.tick()


def test_unreadable_credential_fails_after_n_attempts_and_good_runs_finish(
        project, data_dir, engine, controller, clock):
    p1, p2 = two_projects(project, data_dir)
    # A credential stored under another SLIPWAY_ENCRYPTION_KEY (the key was changed since).
    with override_settings(ENCRYPTION_KEY="the-key-before-the-change"):
        cred = SourceCodeCredential.objects.create(project=project, name="old", access_token="t0ken")
    bad_pipeline = Pipeline.objects.create(project=project, repository_url="/nonexistent/c",
                                           default_branch="master", credential=cred)
    bad = new_execution(bad_pipeline)
    good = [new_execution(p1), new_execution(p2), new_execution(p2)]

    controller.tick()  # the first pass: good runs start and finish, the bad one fails its start
    row = PipelineExecution.objects.get(pk=bad.pk)
    assert row.execution_state == S.WAITING and row.unit_attempts == 1
    assert "start: ValueError: cannot decrypt a stored credential" in row.unit_error
    assert row.unit_retry_at == clock.t + unit_backoff(1)
    assert [PipelineExecution.objects.get(pk=e.pk).execution_state for e in good] == [S.SUCCESS] * 3

    # Before its retry time the bad row is not touched again.
    controller.tick()
    assert PipelineExecution.objects.get(pk=bad.pk).unit_attempts == 1

    drive(controller, clock, UNIT_MAX_ATTEMPTS - 1)
    row = PipelineExecution.objects.get(pk=bad.pk)
    assert row.execution_state == S.FAILED and row.unit_attempts == UNIT_MAX_ATTEMPTS
    assert row.error.startswith(f"the controller gave up after {UNIT_MAX_ATTEMPTS} attempts: start: ")
    assert "cannot decrypt" in row.error
    assert "t0ken" not in row.error
    # New runs still go through afterwards, in both projects.
    later = [new_execution(p1), new_execution(p2)]
    controller.tick()
    assert [PipelineExecution.objects.get(pk=e.pk).execution_state for e in later] == [S.SUCCESS] * 2


def test_config_of_a_bad_schema_while_building_fails_after_n_attempts(
        project, data_dir, engine, controller, clock):
    """A Building run whose stored config no longer parses (a schema change on upgrade)."""
    engine.duration = 3600
    p1, p2 = two_projects(project, data_dir)
    bad = new_execution(p1)
    good = [new_execution(p1), new_execution(p2)]
    controller.tick()
    assert {PipelineExecution.objects.get(pk=e.pk).execution_state for e in (bad, *good)} == {S.BUILDING}
    PipelineExecution.objects.filter(pk=bad.pk).update(config={"stages": "not a list", "timeout": "x"})
    restarted = Controller(engine, clock=clock)  # a restart: nothing cached, the row is read again
    for e in good:
        engine.finish(e.name, S.SUCCESS)
    drive(restarted, clock, UNIT_MAX_ATTEMPTS)
    assert [PipelineExecution.objects.get(pk=e.pk).execution_state for e in good] == [S.SUCCESS] * 2
    row = PipelineExecution.objects.get(pk=bad.pk)
    assert row.execution_state == S.FAILED and row.unit_attempts == UNIT_MAX_ATTEMPTS
    assert row.error.startswith(f"the controller gave up after {UNIT_MAX_ATTEMPTS} attempts: sync: ")
    # Its runner is stopped (by name: the row cannot be read whole) and its slot freed.
    assert row.abort_requested
    restarted.tick()
    assert engine.stopped[bad.name] == 1 and engine.cleaned[bad.name] == 1
    row = PipelineExecution.objects.get(pk=bad.pk)
    assert not row.abort_requested and row.execution_state == S.FAILED
    restarted.close_wakeups()


def test_a_unit_that_recovers_starts_counting_again(project, pipeline, engine, controller, clock, monkeypatch):
    calls = []

    def flaky_deploy(project_id):
        calls.append(project_id)
        if len(calls) < 3:
            raise RuntimeError("engine bug")

    monkeypatch.setattr(engine, "deploy", flaky_deploy)
    ex = new_execution(pipeline)
    drive(controller, clock, 2)
    assert PipelineExecution.objects.get(pk=ex.pk).unit_attempts == 2
    drive(controller, clock, 1)
    row = PipelineExecution.objects.get(pk=ex.pk)
    assert row.execution_state == S.SUCCESS
    assert (row.unit_attempts, row.unit_error, row.unit_retry_at) == (0, "", None)


def test_a_failed_finish_write_is_retried_next_pass(project, pipeline, engine, controller, monkeypatch):
    """The embedded-controller flake: a database error while finishing must not leave the run Building.

    The report used to be remembered before the finish was written, so the
    next pass saw "nothing new" and the run stayed Building for ever.
    """
    from django.db import OperationalError

    from devops.controller import loop

    real = loop.do_finish
    failures = []

    def locked_once(*args, **kwargs):
        if not failures:
            failures.append(1)
            raise OperationalError("database table is locked: devops_pipelineexecution")
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "do_finish", locked_once)
    ex = new_execution(pipeline, make_config([{}]))
    controller.tick()
    row = PipelineExecution.objects.get(pk=ex.pk)
    assert failures and row.execution_state == S.BUILDING
    assert row.unit_attempts == 0  # the database's trouble, not the row's
    controller.tick()
    assert PipelineExecution.objects.get(pk=ex.pk).execution_state == S.SUCCESS


def test_an_unreadable_secret_fails_only_the_runs_that_use_it(project, data_dir, engine, controller, clock):
    """Every start deploys the project (all its secrets): one secret under an older key
    failed every run of the project, also those that never name it."""
    from devops.controller.spec import build_project_spec
    from devops.models import Secret
    from devops.pipeline.config import EnvFrom, PipelineConfig, RunScriptConfig, Stage, Step

    def using(secret: str) -> PipelineConfig:
        base = make_config()
        step = Step(type=RunScriptConfig(image="busybox", shellScript="true"),
                    env_from=(EnvFrom(sourceName=secret, sourceKey="K"),))
        return PipelineConfig(stages=(base.stages[0], Stage(name="S1", steps=(step,))), timeout=60)

    with override_settings(ENCRYPTION_KEY="the-key-before-the-change"):
        Secret.objects.create(project=project, name="old", data={"K": "v4lue-old"})
    Secret.objects.create(project=project, name="fresh", data={"K": "v4lue-new"})
    pipeline = Pipeline.objects.create(project=project, repository_url="/nonexistent/a", default_branch="master")
    plain = new_execution(pipeline)
    uses_fresh = new_execution(pipeline, using("fresh"))
    uses_old = new_execution(pipeline, using("old"))
    controller.tick()
    assert PipelineExecution.objects.get(pk=plain.pk).execution_state == S.SUCCESS
    assert PipelineExecution.objects.get(pk=uses_fresh.pk).execution_state == S.SUCCESS
    row = PipelineExecution.objects.get(pk=uses_old.pk)
    assert row.execution_state == S.WAITING and "cannot decrypt" in row.unit_error
    drive(controller, clock, UNIT_MAX_ATTEMPTS - 1)
    assert PipelineExecution.objects.get(pk=uses_old.pk).execution_state == S.FAILED
    # deploy() gets the secrets that can be read; the other is left out, not a crash.
    assert build_project_spec(project).secrets == {"fresh": {"K": "v4lue-new"}}
