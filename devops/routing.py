"""WebSocket routes (the ASGI app in devops/asgi.py mounts them under auth)."""
from __future__ import annotations

from django.urls import path

from devops.api.consumers import LogStreamConsumer

websocket_urlpatterns: list = [
    path(
        "ws/v1/projects/<str:project>/executions/<str:name>/log",
        LogStreamConsumer.as_asgi(),
        name="ws-execution-log",
    ),
]
