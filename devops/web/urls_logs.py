"""The log viewer's routes (included by devops/web/urls.py, namespace "web")."""
from __future__ import annotations

from django.urls import path

from devops.web import views_logs as views

_STEP = "p/<str:project>/pipelines/<str:pipeline>/runs/<int:n>/logs/<int:stage>.<int:step>/"

urlpatterns: list = [
    path(_STEP, views.step_log, name="step-log"),
    path(_STEP + "lines", views.step_log_lines, name="step-log-lines"),
]
