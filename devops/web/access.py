"""Who may see and change a project in the browser: the Django twin of `devops.api.permissions.project_for`.

One helper, one rule set (the API's `LEVEL_ROLES` and `role_in`), so a page
and the API never disagree:

    anonymous                        -> the login page (the view's @login_required)
    not a member / no such project   -> Http404 (the same answer, so a URL does not
                                        reveal that a project exists)
    a member below the level         -> PermissionDenied (403)

The returned project carries `request_role` and `can_write` / `is_owner` for
the templates: read-only members see every page with no write control.
"""
from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

from devops.api.permissions import LEVEL_ROLES, Level, role_in
from devops.models import Project, Role


def project_for(request: HttpRequest, project_id: str, level: Level = "read") -> Project:
    """The project `project_id` if request.user has `level` in it; else Http404 / PermissionDenied."""
    if level not in LEVEL_ROLES:
        raise ValueError(f"unknown level {level!r}")
    project, role = role_in(project_id, request.user)
    if project is None:
        raise Http404("No such project.")
    if role not in LEVEL_ROLES[level]:
        raise PermissionDenied(f"This needs the {level} level in project {project.name}; you are {role}.")
    project.request_role = role
    project.can_write = role in LEVEL_ROLES["write"]
    project.is_owner = role == Role.OWNER
    return project
