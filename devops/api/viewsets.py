"""The base of every project-scoped API view: membership check first, CRD rendering.

A view under `projects/<project>/...` resolves the project (and the user's
level in it) in `initial()`, before the body is parsed or validated, so a
non-member gets 404 and a read-only member 403 whatever they send.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

from django.db.models import Model, QuerySet
from rest_framework import status, viewsets
from rest_framework.exceptions import APIException
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response

from devops.api.permissions import Level, project_for
from devops.api.serializers import CRDObjectSerializer
from devops.models import ExecutionState, Project


class ProjectScopedViewSet(viewsets.GenericViewSet):
    """Subclasses set `queryset`, `crd_render = staticmethod(crd.<kind>)` and `write_level`."""

    serializer_class = CRDObjectSerializer
    lookup_field = "name"
    crd_render: Callable[[Any], dict[str, Any]]
    write_level: Level = "write"

    def level(self) -> Level:
        return "read" if self.request.method in SAFE_METHODS else self.write_level

    @cached_property
    def project(self) -> Project:
        return project_for(self.request, self.kwargs["project"], self.level())

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication, IsAuthenticated
        self.project  # noqa: B018 — 404/403 before anything else looks at the request

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular building the schema
            return self.queryset.none()
        return self.queryset.filter(project=self.project)

    def to_crd(self, obj: Model) -> dict[str, Any]:
        return self.crd_render(obj)

    def list(self, request, *args, **kwargs) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response([self.to_crd(obj) for obj in page])

    def retrieve(self, request, *args, **kwargs) -> Response:
        return Response(self.to_crd(self.get_object()))


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The object is in use."
    default_code = "conflict"


def busy_executions(executions: QuerySet) -> tuple[list[str], list[str]]:
    """(running, stopping): names (at most 5 each) of executions whose rows must not be deleted.

    running = Waiting, Queueing or Building; stopping = stopped, but the
    controller has not yet stopped the runner (`abort_requested`): until
    then the row is how the controller finds the runner and its secrets.
    """
    running = list(executions.filter(execution_state__in=ExecutionState.active()).values_list("name", flat=True)[:5])
    stopping = list(executions.filter(abort_requested=True).values_list("name", flat=True)[:5])
    return running, stopping


def refuse_while_running(executions: QuerySet) -> None:
    """409 when any of `executions` is running or has its stop pending (`busy_executions`).

    Deleting a project or pipeline cascades to its executions; one still
    running would leave a runner writing to rows that no longer exist, and
    one whose stop is pending would leave its runner orphaned, with the
    secrets in its run directory.
    """
    running, stopping = busy_executions(executions)
    if running:
        raise Conflict(f"executions still running: {', '.join(running)}; stop them first")
    if stopping:
        raise Conflict(f"executions stopped but their runners not yet stopped by the controller: "
                       f"{', '.join(stopping)}; try again once the controller has stopped them")


def detail_routes(viewset: type, *, write: dict[str, str] | None = None) -> tuple:
    """(list view, detail view) for `viewset`: GET list/retrieve plus the given write methods."""
    write = write or {}
    list_actions = {"get": "list", **{m: a for m, a in write.items() if a == "create"}}
    detail_actions = {"get": "retrieve", **{m: a for m, a in write.items() if a != "create"}}
    return viewset.as_view(list_actions), viewset.as_view(detail_actions)
