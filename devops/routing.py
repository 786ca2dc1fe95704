"""WebSocket routes (the ASGI app in devops/asgi.py mounts them under auth)."""
from __future__ import annotations

from django.urls import path

from devops.api.consumers import LogStreamConsumer
from devops.web.consumers import StatusConsumer

websocket_urlpatterns: list = [
    path(
        "ws/v1/projects/<str:project>/executions/<str:name>/log",
        LogStreamConsumer.as_asgi(),
        name="ws-execution-log",
    ),
    # One status socket per page (devops/web/consumers.py): project list, pipeline list, one run.
    path("ws/v1/status/", StatusConsumer.as_asgi(), name="ws-status-projects"),
    path("ws/v1/status/<str:project>/", StatusConsumer.as_asgi(), name="ws-status-project"),
    path("ws/v1/status/<str:project>/executions/<str:name>", StatusConsumer.as_asgi(), name="ws-status-run"),
]
