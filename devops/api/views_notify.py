"""Notifiers over HTTP, and a run's notifications.

    GET|POST                 /api/v1/projects/{project}/notifiers/
    GET|PUT|PATCH|DELETE     /api/v1/projects/{project}/notifiers/{name}/
    POST                     /api/v1/projects/{project}/notifiers/{name}/test   {"recipient": "..."}
    GET                      /api/v1/projects/{project}/executions/{name}/notifications

Reading needs the read level; writing and "test" the write level (owner or
member): read-only members get 403, non-members 404. Secret fields are
write-only (devops/api/notifiers.py).
"""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from devops.api import notifiers
from devops.api.permissions import project_for
from devops.api.viewsets import ProjectScopedViewSet
from devops.controller.notifications import send_test
from devops.models import NotificationDelivery, Notifier, PipelineExecution
from devops.notifications.base import DeliveryFailure


class NotifierViewSet(ProjectScopedViewSet):
    """Notifiers named by the pipeline file's `notification.recipients[].notifier`."""

    queryset = Notifier.objects.all()
    crd_render = staticmethod(notifiers.render)

    @extend_schema(request=OpenApiTypes.OBJECT, responses={201: OpenApiTypes.OBJECT},
                   description="`{name, kind, config: {field: value}}`; kinds and fields: README *Notifications*.")
    def create(self, request, project: str):
        try:
            obj = notifiers.apply(self.project, request.data)
        except notifiers.NotifierInvalid as exc:
            raise ValidationError(exc.errors) from None
        return Response(notifiers.render(obj), status=status.HTTP_201_CREATED)

    def _write(self, request, *, partial: bool) -> Response:
        obj = self.get_object()
        data = dict(request.data) if isinstance(request.data, dict) else request.data
        if not partial and isinstance(data, dict) and isinstance(data.get("config"), dict):
            # PUT replaces the plain fields; secret fields left out still keep their values.
            kind = data.get("kind", obj.kind)
            if kind == obj.kind:
                obj.config = {}
        try:
            obj = notifiers.apply(self.project, data, obj)
        except notifiers.NotifierInvalid as exc:
            raise ValidationError(exc.errors) from None
        return Response(notifiers.render(obj))

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def update(self, request, project: str, name: str):
        return self._write(request, partial=False)

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def partial_update(self, request, project: str, name: str):
        return self._write(request, partial=True)

    def destroy(self, request, project: str, name: str):
        self.get_object().delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT,
               description="Send a test message now. 200 `{ok: true, outcome}`; 502 `{ok: false, error}` when "
                           "the receiver refused it or could not be reached; 400 for a bad `recipient`.")
@api_view(["POST"])
def test_notifier(request: Request, project: str, name: str) -> Response:
    proj = project_for(request, project, "write")
    obj = get_object_or_404(Notifier, project=proj, name=name)
    recipient = request.data.get("recipient", "") if isinstance(request.data, dict) else ""
    if not isinstance(recipient, str) or len(recipient) > 1024:
        raise ValidationError({"recipient": ["a string of at most 1024 characters"]})
    problem = notifiers.kind_class(obj.kind).check_recipient(recipient)
    if problem:
        raise ValidationError({"recipient": [problem]})
    try:
        outcome = send_test(obj, recipient)
    except DeliveryFailure as exc:
        return Response({"ok": False, "error": str(exc)}, status=status.HTTP_502_BAD_GATEWAY)
    return Response({"ok": True, "outcome": outcome})


@extend_schema(responses=OpenApiTypes.OBJECT, description="The run's notifications: one per recipient of "
               "its file that its conditions selected, with state (Pending, Sent, Failed), attempts and error.")
@api_view(["GET"])
def execution_notifications(request: Request, project: str, name: str) -> Response:
    proj = project_for(request, project, "read")
    execution = get_object_or_404(PipelineExecution, project=proj, name=name)
    rows = NotificationDelivery.objects.filter(execution=execution).order_by("index")
    return Response({"execution": execution.name, "notified": execution.notified,
                     "items": [notifiers.render_delivery(d) for d in rows]})
