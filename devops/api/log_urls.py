"""Log routes under /api/v1/ (README "Logs")."""
from __future__ import annotations

from django.urls import path

from devops.api import views_logs as views

_STEP = "projects/<str:project>/executions/<str:name>/stages/<int:stage>/steps/<int:step>/log"

urlpatterns: list = [
    path("projects/<str:project>/executions/<str:name>/logs", views.ExecutionLogsView.as_view(),
         name="execution-logs"),
    path(_STEP, views.StepLogView.as_view(), name="step-log"),
    path(_STEP + "/lines", views.StepLogLinesView.as_view(), name="step-log-lines"),
    path(_STEP + "/search", views.StepLogSearchView.as_view(), name="step-log-search"),
]
