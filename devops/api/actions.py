"""Run / rerun / stop over HTTP: thin views over the controller's `do_*` actions.

    POST /api/v1/projects/{project}/pipelines/{name}/run         {"branch": "...", "config": "<YAML>"}
    POST /api/v1/projects/{project}/executions/{name}/rerun
    POST /api/v1/projects/{project}/executions/{name}/stop

All need the project's write level (owner or member): read-only members get
403, non-members 404 (`devops.api.permissions.project_for`). Answers: the
execution in CRD shape (201 for run/rerun, 200 for stop); an invalid
pipeline file is 400 with every problem (`problems`: path, line, column,
severity, message); other refusals are 400 (repository, branch) or 409
(stopping a finished run, rerunning an active one).
"""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from devops.api import crd
from devops.api.permissions import project_for
from devops.controller.actions import (
    ActionError,
    InvalidTransition,
    PipelineFileInvalid,
    do_rerun,
    do_run,
    do_stop,
)
from devops.models import Pipeline, PipelineExecution

_EXECUTION = OpenApiResponse(OpenApiTypes.OBJECT, description="the execution in CRD shape")
_REFUSED = OpenApiResponse(OpenApiTypes.OBJECT, description="`detail`; for an invalid file also `problems`, `lines`")
_RUN_BODY = inline_serializer("RunRequest", {
    "branch": serializers.CharField(required=False, help_text="default: the pipeline's default branch"),
    "config": serializers.CharField(required=False, help_text="YAML run as a temporary config"),
})


def _rendered(execution: PipelineExecution) -> dict:
    return crd.execution(crd.executions_queryset().get(pk=execution.pk))


def _refused(exc: ActionError) -> Response:
    if isinstance(exc, PipelineFileInvalid):
        return Response(
            {
                "detail": f"{exc.filename} is invalid",
                "problems": [p.to_dict() if hasattr(p, "to_dict") else {"message": str(p)} for p in exc.problems],
                "lines": exc.lines,
            },
            status=status.HTTP_400_BAD_REQUEST,
        )
    code = status.HTTP_409_CONFLICT if isinstance(exc, InvalidTransition) else status.HTTP_400_BAD_REQUEST
    return Response({"detail": str(exc)}, status=code)


@extend_schema(operation_id="pipeline_run", request=_RUN_BODY, tags=["actions"],
               responses={201: _EXECUTION, 400: _REFUSED})
@api_view(["POST"])
def run_pipeline(request: Request, project: str, name: str) -> Response:
    proj = project_for(request, project, "write")
    pipeline = get_object_or_404(Pipeline.objects.select_related("credential"), project=proj, name=name)
    data = request.data if isinstance(request.data, dict) else {}
    branch, config = data.get("branch") or None, data.get("config")
    for field, value in (("branch", branch), ("config", config)):
        if value is not None and not isinstance(value, str):
            return Response({field: ["must be a string"]}, status=status.HTTP_400_BAD_REQUEST)
    try:
        execution = do_run(pipeline, branch=branch, user=request.user, config_text=config or None,
                           trigger_type="user")
    except ActionError as exc:
        return _refused(exc)
    return Response(_rendered(execution), status=status.HTTP_201_CREATED)


def _execution(request: Request, project: str, name: str) -> PipelineExecution:
    proj = project_for(request, project, "write")
    return get_object_or_404(PipelineExecution.objects.select_related("pipeline", "project"),
                             project=proj, name=name)


@extend_schema(operation_id="execution_rerun", request=None, tags=["actions"],
               responses={201: _EXECUTION, 409: _REFUSED})
@api_view(["POST"])
def rerun_execution(request: Request, project: str, name: str) -> Response:
    execution = _execution(request, project, name)
    try:
        new = do_rerun(execution, request.user)
    except ActionError as exc:
        return _refused(exc)
    return Response(_rendered(new), status=status.HTTP_201_CREATED)


@extend_schema(operation_id="execution_stop", request=None, tags=["actions"],
               responses={200: _EXECUTION, 409: _REFUSED})
@api_view(["POST"])
def stop_execution(request: Request, project: str, name: str) -> Response:
    execution = _execution(request, project, name)
    if not do_stop(execution, request.user):
        return _refused(InvalidTransition(f"{execution.name} has already finished ({execution.execution_state})"))
    return Response(_rendered(execution), status=status.HTTP_200_OK)
