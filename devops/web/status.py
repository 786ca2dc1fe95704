"""Which list rows a live push re-renders (devops/web/consumers.py).

The rows themselves are the list pages' own partials (`web/projects.html#project-row`,
`web/project.html#pipeline-row`), built by `views.project_rows` / `views.pipeline_rows`,
so a pushed row is exactly what a reload shows.
"""
from __future__ import annotations

from devops.models import Pipeline, PipelineExecution


def changed_pipelines(project_id: str, executions: set[str] | None) -> list[Pipeline]:
    """The project's pipelines, or only those of these executions."""
    qs = Pipeline.objects.filter(project_id=project_id).order_by("name")
    if executions is not None:
        qs = qs.filter(pk__in=PipelineExecution.objects.filter(name__in=executions).values("pipeline_id"))
    return list(qs)
