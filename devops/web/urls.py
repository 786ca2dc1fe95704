"""Browser pages (namespace "web"). Minimal here: the log viewer's routes."""
from __future__ import annotations

from django.urls import include, path

app_name = "web"

urlpatterns: list = [
    path("", include("devops.web.urls_logs")),
]
