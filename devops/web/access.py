"""The pages' access helper: the Django twin of the API's `project_for`."""
from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from devops.api.permissions import LEVEL_ROLES, Level, role_in
from devops.models import Project


def page_project(request, project_id: str, level: Level = "read") -> Project:
    """The project if request.user has `level` in it.

    Not a member (or no such project) -> Http404, the same answer for both,
    as the API; a member below `level` -> PermissionDenied (403). The project
    carries the role as `request_role` and `can_write` for the templates.
    Anonymous users never get here (the views are `login_required`).
    """
    project, role = role_in(project_id, request.user)
    if project is None:
        raise Http404("No such project.")
    if role not in LEVEL_ROLES[level]:
        raise PermissionDenied(f"This needs the {level} level in project {project.id}.")
    project.request_role = role
    project.can_write = role in LEVEL_ROLES["write"]
    return project
