"""`devops-cache-dir`: a host path only for superusers; others stay under SLIPWAY_DATA_DIR (issue 8, point 5)."""
from __future__ import annotations

import io

import pytest
from django.core.management import call_command


def patch(client, world, value):
    return client.patch(f"/api/v1/projects/{world['project'].id}/settings/devops-cache-dir/", {"value": value},
                        format="json")


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    settings.DATA_DIR.mkdir()
    return settings.DATA_DIR


@pytest.mark.parametrize("where", ["/etc", "/", "{d}", "{d}/runs", "{d}/runs/p-x", "{d}/cache/../workspaces",
                                   "{d}/../elsewhere", "{d}/registry/storage", "{d}/link-out",
                                   "{d}/log-spool", "{d}/controllers", "{d}/slipway.sqlite3-wal"])
def test_an_owner_cannot_point_the_cache_at_a_host_path(world, client_as, data_dir, where):
    (data_dir / "link-out").symlink_to("/etc")
    value = where.format(d=data_dir)
    response = patch(client_as("alice"), world, value)
    assert response.status_code == 400, response.content
    assert "devops-cache-dir must lie under SLIPWAY_DATA_DIR" in response.json()["value"][0]
    assert world["project"].setting("devops-cache-dir") == ""


def test_an_owner_may_use_a_directory_under_the_data_dir(world, client_as, data_dir):
    response = patch(client_as("alice"), world, f"{data_dir}/cache/big-disk")
    assert response.status_code == 200, response.content
    assert world["project"].setting("devops-cache-dir") == f"{data_dir}/cache/big-disk"


def test_a_superuser_may_use_any_absolute_path(world, client_as, personas, data_dir):
    personas["charlie"].is_superuser = True
    personas["charlie"].save()
    assert patch(client_as("charlie"), world, "/srv/ci-cache").status_code == 200
    assert world["project"].setting("devops-cache-dir") == "/srv/ci-cache"
    assert patch(client_as("charlie"), world, "relative/path").status_code == 400


def test_the_project_command_is_the_operator(world, data_dir):
    """`project setting` runs at the host's shell (it can read the database and the keys): superuser rules."""
    out = io.StringIO()
    call_command("project", "setting", "demo", "devops-cache-dir", "/srv/ci-cache", stdout=out)
    assert world["project"].setting("devops-cache-dir") == "/srv/ci-cache"
