from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection

from devops.models import DEFAULT_SETTINGS, Project, Role, Secret


def test_no_missing_migrations(db):
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)


def test_project_seeds_every_setting_with_defaults(project):
    names = set(project.settings.values_list("name", flat=True))
    assert names == set(DEFAULT_SETTINGS)
    assert project.setting("executor-quota") == "2"
    row = project.settings.get(name="executor-quota")
    row.value = "5"
    row.save()
    assert project.setting("executor-quota") == "5"
    assert project.id.startswith("p-") and len(project.id) == 7


def test_roles(project, personas):
    assert project.role_of(personas["alice"]) == Role.OWNER
    assert project.role_of(personas["bob"]) == Role.MEMBER
    assert project.role_of(personas["ronnie"]) == Role.READ_ONLY
    assert project.role_of(personas["charlie"]) is None


def test_secret_values_are_encrypted_at_rest(project):
    Secret.objects.create(project=project, name="reg", data={"password": "hunter2-very-secret"})
    with connection.cursor() as cur:
        cur.execute("SELECT data FROM devops_secret WHERE name = %s", ["reg"])
        (raw,) = cur.fetchone()
    assert "hunter2" not in raw and raw.startswith("fernet:v1:")
    assert Secret.objects.get(name="reg").data == {"password": "hunter2-very-secret"}


def test_project_name_unique(project):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Project.objects.create(name="demo")
