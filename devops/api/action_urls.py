"""/api/v1/ routes of the controller actions: run, rerun, stop (views in devops/api/actions.py)."""
from __future__ import annotations

from django.urls import path

from devops.api.actions import rerun_execution, run_pipeline, stop_execution

P = "projects/<str:project>/"

urlpatterns: list = [
    path(P + "pipelines/<str:name>/run", run_pipeline, name="api-pipeline-run"),
    path(P + "executions/<str:name>/rerun", rerun_execution, name="api-execution-rerun"),
    path(P + "executions/<str:name>/stop", stop_execution, name="api-execution-stop"),
]
