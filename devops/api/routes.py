"""/api/v1/ routes of projects, members, settings, secrets, pipelines, executions, files.

Project-scoped paths start with `projects/<project>/` (`<project>` = the
project id); run/rerun/stop, logs and caches add their own modules beside
this one in devops/api/urls.py.
"""
from __future__ import annotations

from django.urls import path

from devops.api.views_files import EditView, LintView
from devops.api.views_pipelines import (
    CredentialViewSet,
    ExecutionViewSet,
    PipelineViewSet,
    RepositoryViewSet,
)
from devops.api.views_projects import MemberViewSet, ProjectViewSet, SecretViewSet, SettingViewSet
from devops.api.viewsets import detail_routes

P = "projects/<str:project>/"
CRUD = {"post": "create", "put": "update", "patch": "partial_update", "delete": "destroy"}


def _pair(prefix: str, detail: str, viewset: type, name: str, write: dict[str, str] | None = None) -> list:
    list_view, detail_view = detail_routes(viewset, write=write)
    return [
        path(prefix, list_view, name=f"api-{name}-list"),
        path(prefix + detail, detail_view, name=f"api-{name}-detail"),
    ]


urlpatterns = [
    path("projects/", ProjectViewSet.as_view({"get": "list", "post": "create"}), name="api-project-list"),
    path(
        P,
        ProjectViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        name="api-project-detail",
    ),
    *_pair(P + "members/", "<str:user>/", MemberViewSet, "member",
           {"post": "create", "patch": "partial_update", "delete": "destroy"}),
    *_pair(P + "settings/", "<str:name>/", SettingViewSet, "setting", {"patch": "partial_update"}),
    *_pair(P + "secrets/", "<str:name>/", SecretViewSet, "secret", CRUD),
    *_pair(P + "pipelines/", "<str:name>/", PipelineViewSet, "pipeline", CRUD),
    *_pair(P + "pipelines/<str:pipeline>/executions/", "<str:name>/", ExecutionViewSet, "pipeline-execution"),
    *_pair(P + "executions/", "<str:name>/", ExecutionViewSet, "execution"),
    *_pair(P + "credentials/", "<str:name>/", CredentialViewSet, "credential"),
    *_pair(P + "repositories/", "<int:id>/", RepositoryViewSet, "repository"),
    path("lint", LintView.as_view(), name="api-lint"),
    path("pipelinefiles/edit", EditView.as_view(), name="api-pipelinefile-edit"),
]
