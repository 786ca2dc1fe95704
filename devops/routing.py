"""WebSocket routes. The log streaming consumer lives in devops/logs/."""
from __future__ import annotations

websocket_urlpatterns: list = []
