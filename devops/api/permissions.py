"""Who may do what in a project — the one place the API (and its neighbours) decide it.

Levels:
    "read"   any member (owner, member, read-only)
    "write"  owner or member: edit pipelines and secrets, run / rerun / stop
    "owner"  owner only: members, settings, renaming or deleting the project
Superusers have every level in every project.

Use from any DRF view (run/rerun/stop, log download, cache...)::

    from devops.api.permissions import project_for
    project = project_for(request, project_id, level="write")

Answers: anonymous -> NotAuthenticated (401/403, DRF decides by the auth
classes); not a member or no such project -> NotFound (404, the same answer
for both so a URL does not reveal that a project exists); a member below the
level -> PermissionDenied (403).
"""
from __future__ import annotations

from typing import Literal

from django.db.models import QuerySet
from rest_framework.exceptions import NotAuthenticated, NotFound, PermissionDenied
from rest_framework.request import Request

from devops.models import Project, ProjectMember, Role

Level = Literal["read", "write", "owner"]

# The roles that grant each level.
LEVEL_ROLES: dict[str, frozenset[str]] = {
    "read": frozenset({Role.OWNER, Role.MEMBER, Role.READ_ONLY}),
    "write": frozenset({Role.OWNER, Role.MEMBER}),
    "owner": frozenset({Role.OWNER}),
}


def role_in(project_id: str, user) -> tuple[Project | None, str | None]:
    """(project, role of user) in one query; (None, None) when no such project or no membership."""
    if user is None or not user.is_authenticated:
        return None, None
    if user.is_superuser:
        return Project.objects.filter(pk=project_id).first(), Role.OWNER
    row = (
        ProjectMember.objects.select_related("project")
        .filter(project_id=project_id, user=user)
        .only("role", "project")
        .first()
    )
    return (row.project, row.role) if row else (None, None)


def project_for(request: Request, project_id: str, level: Level = "read") -> Project:
    """The project `project_id` if request.user has `level` in it; else raise (see module doc).

    The returned project carries the user's role as `project.request_role`.
    """
    if level not in LEVEL_ROLES:
        raise ValueError(f"unknown level {level!r}")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        raise NotAuthenticated()
    project, role = role_in(project_id, user)
    if project is None:
        raise NotFound("No such project.")
    if role not in LEVEL_ROLES[level]:
        raise PermissionDenied(f"This needs the {level} level in project {project.id}; you are {role}.")
    project.request_role = role
    return project


def projects_of(user) -> QuerySet[Project]:
    """The projects a user may read (all of them for a superuser)."""
    if user is None or not user.is_authenticated:
        return Project.objects.none()
    if user.is_superuser:
        return Project.objects.all()
    return Project.objects.filter(members__user=user).distinct()
