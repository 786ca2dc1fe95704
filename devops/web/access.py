"""Who may see a page: the Django twin of devops.api.permissions.project_for.

(Minimal, for the log viewer; the pages branch brings the full helper.)
"""
from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from devops.api.permissions import LEVEL_ROLES, Level, role_in


def page_project(request, project_id: str, level: Level = "read"):
    """The project if request.user has `level` in it. Not a member, no such
    project (or anonymous: the login_required view decorator sends those to
    the login page first) -> Http404; a member below the level -> PermissionDenied.
    The project carries the role as `project.request_role`."""
    project, role = role_in(project_id, request.user)
    if project is None:
        raise Http404("No such project.")
    if role not in LEVEL_ROLES[level]:
        raise PermissionDenied(f"This needs the {level} level in project {project.id}.")
    project.request_role = role
    return project
