"""do_run / do_rerun: a new execution with its stage and step rows (created = Waiting, no engine)."""
from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from devops.controller.actions.errors import BranchNotAllowed, InvalidTransition
from devops.controller.actions.notify import ring_on_commit
from devops.controller.actions.source import read_source
from devops.models import ExecutionState as S
from devops.models import Pipeline, PipelineExecution, StageStatus, StepStatus
from devops.pipeline.config import PipelineConfig


def do_run(
    pipeline: Pipeline,
    *,
    branch: str | None = None,
    user=None,
    event: str = "",
    commit: str = "",
    ref: str = "",
    message: str = "",
    author: str = "",
    author_email: str = "",
    trigger_type: str = "user",
    config_text: str | None = None,
    config_filename: str = "",
) -> PipelineExecution:
    """Start a run of `pipeline` on `branch` (default: the pipeline's default branch).

    Reads the pipeline file from the repository at the commit, unless
    `config_text` (a temporary config: YAML run without being committed) is
    given. Raises PipelineFileInvalid (with every problem), BranchNotAllowed
    (top-level `branch` constraint), RepositoryError. Stages and steps whose
    `when` does not match are Skipped from the start; the engine evaluates
    the same constraints with the same branch and event.
    """
    src = read_source(pipeline, branch=branch, commit=commit, ref=ref, config_text=config_text,
                      config_filename=config_filename)
    from devops.pipeline import should_run

    if not should_run(src.config, branch=src.branch, event=event):
        raise BranchNotAllowed(f"branch {src.branch!r} is excluded by the pipeline's branch constraint")
    return _create_execution(
        pipeline, config=src.config, config_text=src.config_text,
        temporary_config=config_text is not None, branch=src.branch, commit=src.commit, ref=src.ref,
        event=event, message=message or src.message, author=author or src.author,
        author_email=author_email or src.author_email, trigger_type=trigger_type, user=user,
    )


def do_rerun(execution: PipelineExecution, user=None) -> PipelineExecution:
    """A NEW execution with the same config and commit (as Rancher's rerun)."""
    if not execution.is_finished:
        raise InvalidTransition(f"{execution.name} is {execution.execution_state}; only a finished run can be rerun")
    return _create_execution(
        execution.pipeline, config=PipelineConfig.from_json(execution.config),
        config_text=execution.config_text, temporary_config=execution.temporary_config,
        branch=execution.branch, commit=execution.commit, ref=execution.ref, event=execution.event,
        message=execution.message, author=execution.author, author_email=execution.author_email,
        trigger_type="user", user=user, rerun_of=execution,
    )


def _create_execution(pipeline: Pipeline, *, config: PipelineConfig, user=None, rerun_of=None,
                      **fields: Any) -> PipelineExecution:
    now = timezone.now()
    with transaction.atomic():
        # The row lock (PostgreSQL) / the IMMEDIATE write lock (SQLite)
        # makes the run number allocation atomic across processes.
        locked = Pipeline.objects.select_for_update().only("id", "next_run").get(pk=pipeline.pk)
        run = locked.next_run
        Pipeline.objects.filter(pk=pipeline.pk).update(
            next_run=F("next_run") + 1, last_execution_id=f"{pipeline.name}-{run}",
            last_run_state=S.WAITING, last_started=now,
        )
        execution = PipelineExecution.objects.create(
            project_id=pipeline.project_id, pipeline=pipeline, name=f"{pipeline.name}-{run}", run=run,
            repository_url=pipeline.repository_url, config=config.to_json(), trigger_user=user,
            rerun_of=rerun_of, conditions=[], **fields,
        )
        _create_status_rows(execution, config)
        ring_on_commit(execution, S.WAITING)
    pipeline.refresh_from_db(fields=["next_run", "last_execution_id", "last_run_state", "last_started"])
    return execution


def step_label(step) -> str:
    t = step.type
    return {
        "sourceCodeConfig": "clone",
        "runScriptConfig": getattr(t, "image", ""),
        "publishImageConfig": getattr(t, "tag", ""),
    }.get(step.kind, step.kind)


def _create_status_rows(execution: PipelineExecution, config: PipelineConfig) -> None:
    stages, steps = [], []
    for si, stage in enumerate(config.stages):
        stage_on = stage.when is None or stage.when.matches(branch=execution.branch, event=execution.event)
        any_on = False
        for ji, step in enumerate(stage.steps):
            on = stage_on and (step.when is None or step.when.matches(branch=execution.branch, event=execution.event))
            any_on |= on
            steps.append(StepStatus(
                execution=execution, stage_index=si, index=ji, name=step_label(step)[:255],
                state=S.WAITING if on else S.SKIPPED, message="" if on else "when does not match",
            ))
        stages.append(StageStatus(execution=execution, index=si, name=stage.name[:255],
                                  state=S.WAITING if any_on else S.SKIPPED))
    StageStatus.objects.bulk_create(stages)
    StepStatus.objects.bulk_create(steps)


