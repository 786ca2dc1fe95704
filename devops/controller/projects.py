"""Project actions: create a project with its seeded settings and owner."""
from __future__ import annotations

from django.db import transaction

from devops.models import DEFAULT_SETTINGS, PipelineSetting, Project, ProjectMember, Role


@transaction.atomic
def do_create_project(name: str, *, owner=None, description: str = "") -> Project:
    project = Project.objects.create(name=name, description=description)
    PipelineSetting.objects.bulk_create(
        PipelineSetting(project=project, name=key, value="", default=default)
        for key, (default, _meaning) in DEFAULT_SETTINGS.items()
    )
    if owner is not None:
        ProjectMember.objects.create(project=project, user=owner, role=Role.OWNER)
    return project


def get_project(ref: str) -> Project:
    """A project by id (`p-xxxxx`) or by name."""
    project = Project.objects.filter(pk=ref).first() or Project.objects.filter(name=ref).first()
    if project is None:
        raise Project.DoesNotExist(f"no project with id or name {ref!r}")
    return project
