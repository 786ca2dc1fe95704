"""/api/v1/ routes of project notifiers and a run's notifications (views in devops/api/views_notify.py)."""
from __future__ import annotations

from django.urls import path

from devops.api.views_notify import NotifierViewSet, execution_notifications, test_notifier
from devops.api.viewsets import detail_routes

P = "projects/<str:project>/"
_list, _detail = detail_routes(NotifierViewSet, write={"post": "create", "put": "update",
                                                       "patch": "partial_update", "delete": "destroy"})

urlpatterns = [
    path(P + "notifiers/", _list, name="api-notifier-list"),
    path(P + "notifiers/<str:name>/", _detail, name="api-notifier-detail"),
    path(P + "notifiers/<str:name>/test", test_notifier, name="api-notifier-test"),
    path(P + "executions/<str:name>/notifications", execution_notifications, name="api-execution-notifications"),
]
