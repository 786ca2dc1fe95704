"""Row contexts for the live project and pipeline lists (`web/status_rows.html`).

The list pages render these rows and the status consumer pushes the same
partials when a run changes, so one function builds each row's context.
"""
from __future__ import annotations

from django.db.models import Count, IntegerField, OuterRef, Subquery

from devops.models import ExecutionState, Pipeline, PipelineExecution, Project
from devops.web.views_run import duration


def _count(qs) -> Subquery:
    """A correlated COUNT(*) (two Count() joins would multiply pipelines by executions)."""
    return Subquery(qs.order_by().values("project_id").annotate(n=Count("*")).values("n"),
                    output_field=IntegerField())


def changed_pipelines(project_id: str, executions: set[str] | None) -> list[Pipeline]:
    """The project's pipelines, or only those of these executions."""
    qs = Pipeline.objects.filter(project_id=project_id).order_by("name")
    if executions is not None:
        qs = qs.filter(pk__in=PipelineExecution.objects.filter(name__in=executions).values("pipeline_id"))
    return list(qs)


def pipeline_row(pipeline: Pipeline, can_write: bool, oob: bool = False) -> dict:
    last = (PipelineExecution.objects.filter(pipeline=pipeline).order_by("-run")
            .only("run", "execution_state", "started", "ended", "created").first())
    return {"pipeline": pipeline, "last": last, "can_write": can_write, "oob": oob,
            "last_duration": duration(last.started, last.ended) if last else "",
            "last_running": bool(last) and last.execution_state == ExecutionState.BUILDING}


def projects_by_id(ids: list[str]) -> list[Project]:
    return list(Project.objects.filter(pk__in=ids).order_by("name").annotate(
        pipeline_count=_count(Pipeline.objects.filter(project_id=OuterRef("pk"))),
        # (project, execution_state) index: counts the active runs without reading history.
        active_runs=_count(PipelineExecution.objects.filter(
            project_id=OuterRef("pk"), execution_state__in=ExecutionState.active()))))


def project_row(project: Project, oob: bool = False) -> dict:
    """`project` from `projects_by_id` (carries the counts)."""
    # Newest by id, not `created`: the project_id index lists ids in order, so no sort of history.
    last = (PipelineExecution.objects.filter(project=project).order_by("-pk")
            .only("execution_state").first())
    return {"project": project, "last_state": last.execution_state if last else "", "oob": oob,
            "pipeline_count": project.pipeline_count or 0, "active_runs": project.active_runs or 0}
