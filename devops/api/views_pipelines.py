"""Pipelines (CRUD), executions (read; run/rerun/stop live in action_urls), credentials, repositories.

Writes accept the CRD shape a client read — `{"metadata": {"name"}, "spec": {...}}` —
or the bare `spec` object. Status fields are the controller's and never written here.
"""
from __future__ import annotations

import re

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from devops.api import crd, schema
from devops.api.serializers import PipelineWriteSerializer
from devops.api.viewsets import ProjectScopedViewSet, refuse_while_running
from devops.models import (
    ExecutionState,
    Pipeline,
    SourceCodeCredential,
    SourceCodeRepository,
)

PIPELINE_NAME = re.compile(r"^[a-z0-9](?:[-a-z0-9]{0,46}[a-z0-9])?$")

# spec field -> model field, for the plain fields.
SPEC_FIELDS = {
    "repositoryUrl": "repository_url",
    "displayName": "display_name",
    "defaultBranch": "default_branch",
    "triggerWebhookPush": "trigger_webhook_push",
    "triggerWebhookPr": "trigger_webhook_pr",
    "pollInterval": "poll_interval",
    "pollBranches": "poll_branches",
    "triggerWebhookTag": "trigger_webhook_tag",
}


def _image_webhooks(new: list[dict], old: list) -> list[dict]:
    """New entries; one sent without `token` keeps the token of the old entry for the same image.

    Tokens are write-only, so a client that read a pipeline and sends it back
    must not wipe them.
    """
    old_tokens = {
        (e.get("imageType"), e.get("triggerImage")): e.get("token", "")
        for e in old or []
        if isinstance(e, dict)
    }
    entries = []
    for entry in new:
        entry = dict(entry)
        if not entry.get("token"):
            entry["token"] = old_tokens.get((entry["imageType"], entry["triggerImage"]), "")
        entries.append(entry)
    return entries


class PipelineViewSet(ProjectScopedViewSet):
    """Pipelines of the project; owner and members write, read-only members read."""

    queryset = Pipeline.objects.select_related("project", "credential")
    serializer_class = schema.PipelineObject
    crd_render = staticmethod(crd.pipeline)

    def _validated_spec(self, request, *, partial: bool) -> tuple[dict, dict]:
        body = request.data
        if isinstance(body, dict) and "spec" not in body and "metadata" not in body:
            body = {"spec": body}  # the bare spec object
        data = PipelineWriteSerializer(data=body, partial=partial, context={"request": request})
        data.is_valid(raise_exception=True)
        return data.validated_data.get("metadata") or {}, data.validated_data.get("spec") or {}

    def _apply(self, pipeline: Pipeline, spec: dict) -> None:
        for key, field in SPEC_FIELDS.items():
            if key in spec:
                setattr(pipeline, field, spec[key])
        if "sourceCodeCredentialName" in spec:
            name = spec["sourceCodeCredentialName"]
            pipeline.credential = None
            if name:
                pipeline.credential = SourceCodeCredential.objects.filter(project=self.project, name=name).first()
                if pipeline.credential is None:
                    raise ValidationError(
                        {"spec": {"sourceCodeCredentialName": [f"no credential named {name!r} in this project"]}}
                    )
        if "imageWebHookToken" in spec:
            pipeline.image_webhooks = _image_webhooks(spec["imageWebHookToken"], pipeline.image_webhooks)

    @extend_schema(request=PipelineWriteSerializer, responses={201: schema.PipelineObject})
    def create(self, request, project: str):
        metadata, spec = self._validated_spec(request, partial=False)
        pipeline = Pipeline(project=self.project)
        name = metadata.get("name")
        if name is not None:
            if not isinstance(name, str) or not PIPELINE_NAME.match(name):
                raise ValidationError({"metadata": {"name": ["lowercase letters, digits and '-', at most 48"]}})
            pipeline.name = name
        self._apply(pipeline, spec)
        try:
            with transaction.atomic():
                pipeline.save()
        except IntegrityError:
            raise ValidationError({"metadata": {"name": [f"a pipeline named {name!r} exists"]}}) from None
        return Response(crd.pipeline(pipeline), status=status.HTTP_201_CREATED)

    def _write(self, request, *, partial: bool) -> Response:
        pipeline = self.get_object()
        _metadata, spec = self._validated_spec(request, partial=partial)  # metadata.name is immutable
        self._apply(pipeline, spec)
        pipeline.save()
        return Response(crd.pipeline(pipeline))

    @extend_schema(request=PipelineWriteSerializer, responses=schema.PipelineObject)
    def update(self, request, project: str, name: str):
        return self._write(request, partial=False)

    @extend_schema(request=PipelineWriteSerializer, responses=schema.PipelineObject)
    def partial_update(self, request, project: str, name: str):
        return self._write(request, partial=True)

    def destroy(self, request, project: str, name: str):
        pipeline = self.get_object()
        refuse_while_running(pipeline.executions.all())
        pipeline.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


EXECUTION_FILTERS = [
    OpenApiParameter("state", str, enum=[s.value for s in ExecutionState], description="executionState"),
    OpenApiParameter("branch", str, description="spec.branch, exactly"),
    OpenApiParameter("pipeline", str, description="pipeline name (project-wide list only)"),
]


@extend_schema(parameters=EXECUTION_FILTERS)
class ExecutionViewSet(ProjectScopedViewSet):
    """Executions, newest first; `?state=Failed&branch=main` filter. Read-only here."""

    queryset = crd.executions_queryset()
    serializer_class = schema.PipelineExecutionObject
    crd_render = staticmethod(crd.execution)

    def get_queryset(self):
        qs = super().get_queryset().order_by("-created", "-pk")
        if getattr(self, "swagger_fake_view", False):
            return qs
        params = self.request.query_params
        if "pipeline" in self.kwargs:  # projects/<p>/pipelines/<name>/executions/
            pipeline = get_object_or_404(Pipeline, project=self.project, name=self.kwargs["pipeline"])
            qs = qs.filter(pipeline=pipeline)
        elif params.get("pipeline"):
            qs = qs.filter(pipeline__name=params["pipeline"])
        if params.get("state"):
            if params["state"] not in ExecutionState.values:
                raise ValidationError({"state": [f"one of {', '.join(ExecutionState.values)}"]})
            qs = qs.filter(execution_state=params["state"])
        if params.get("branch"):
            qs = qs.filter(branch=params["branch"])
        return qs


class CredentialViewSet(ProjectScopedViewSet):
    """Source code credentials: who authorised which provider. Tokens are never returned."""

    queryset = SourceCodeCredential.objects.select_related("user").order_by("name")
    serializer_class = schema.SourceCodeCredentialObject
    crd_render = staticmethod(crd.credential)


class RepositoryViewSet(ProjectScopedViewSet):
    """Repositories the project's credentials can see.

    A provider listing is its connecting user's view of the provider (private
    repositories of other organisations included), so, as on the repositories
    page (devops/web/views_scm.py), other members see only the rows that have
    a pipeline here."""

    queryset = SourceCodeRepository.objects.select_related("credential")
    serializer_class = schema.SourceCodeRepositoryObject
    crd_render = staticmethod(crd.repository)
    lookup_field = "pk"
    lookup_url_kwarg = "id"

    def get_queryset(self):
        qs = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):
            return qs
        return qs.filter(Q(credential__user=self.request.user) | Q(pipeline__isnull=False)
                         | Q(credential__isnull=True))
