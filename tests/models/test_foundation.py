from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection

from devops.models import DEFAULT_SETTINGS, Project, Role, Secret


def test_no_missing_migrations(db):
    """The one check that the models and the migration files agree (--check exits 1 otherwise)."""
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


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


def test_credential_tokens_and_client_secrets_are_encrypted_at_rest(project):
    from devops.models import SourceCodeCredential, SourceCodeProviderConfig

    SourceCodeCredential.objects.create(project=project, name="gh", source_code_type="github",
                                        access_token="tok-A-41aa", refresh_token="tok-R-77b2",
                                        ssh_private_key="KEY-d90e")
    SourceCodeProviderConfig.objects.create(project=project, type="github", client_secret="cs-5e3c")
    with connection.cursor() as cur:
        cur.execute("SELECT access_token, refresh_token, ssh_private_key FROM devops_sourcecodecredential")
        stored = list(cur.fetchone())
        cur.execute("SELECT client_secret FROM devops_sourcecodeproviderconfig")
        stored += list(cur.fetchone())
    assert all(v.startswith("fernet:v1:") for v in stored), stored
    assert not any(plain in "".join(stored) for plain in ("tok-A-41aa", "tok-R-77b2", "KEY-d90e", "cs-5e3c"))
    assert SourceCodeCredential.objects.get(name="gh").access_token == "tok-A-41aa"


def test_project_name_unique(project):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Project.objects.create(name="demo")


ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def _import_settings(tmp_path, **env: str):
    import os
    import subprocess
    import sys

    full = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    full.update({"SLIPWAY_DATA_DIR": str(tmp_path), **env})
    return subprocess.run([sys.executable, "-c", "import devops.settings"], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("name, value", [
    ("DATABASE_URL", "garbage"),
    ("DATABASE_URL", "mysql://root:hunter2-db-pass@db/x"),
    ("REDIS_URL", "not-a-url"),
    ("SLIPWAY_LOG_LEVEL", "LOUD"),
    ("SLIPWAY_PUBLIC_URL", "slipway.example.com"),
    ("SLIPWAY_DATA_DIR", "/dev/null/slipway"),
    ("SLIPWAY_REGISTRY_ADDR", "abc"),
    ("SLIPWAY_REGISTRY_ADDR", "127.0.0.1:99999"),
    ("SLIPWAY_STEP_RUNTIME", "docker"),
])
def test_bad_setting_stops_start_up_naming_the_variable(tmp_path, name, value):
    done = _import_settings(tmp_path, **{name: value})
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "ImproperlyConfigured" in last and name in last, done.stderr
    assert "hunter2" not in done.stderr  # a database password is never echoed


def test_good_settings_are_accepted(tmp_path):
    done = _import_settings(
        tmp_path, DATABASE_URL="postgres://u:p@127.0.0.1:5432/db", REDIS_URL="redis://127.0.0.1:6379/0",
        SLIPWAY_LOG_LEVEL="warning", SLIPWAY_PUBLIC_URL="https://ci.example.com/",
    )
    assert done.returncode == 0, done.stderr


def test_up_refuses_a_bad_port_naming_it(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "SLIPWAY_DATA_DIR": str(tmp_path), "SLIPWAY_PORT": "80a"}
    env.pop("DATABASE_URL", None)
    done = subprocess.run([sys.executable, "manage.py", "up"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0 and "SLIPWAY_PORT='80a' is not an integer" in done.stderr, done.stderr
    assert not (tmp_path / "slipway.sqlite3").exists()  # refused before migrating
