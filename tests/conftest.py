"""Shared fixtures: personas, projects, and the rule for missing services.

Personas (healthchecks' style): alice owns the project, bob is a member,
ronnie is read-only, charlie has no access.

A test that needs a service (PostgreSQL, Redis, S3, buildah, a registry)
asks for it through `require_service`; locally a missing service skips, in
CI (SLIPWAY_REQUIRE_SERVICES=1) it fails the run.
"""
from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

# The dummy step runtime is test-only (devops/engines/local/runtimes/__init__.py):
# allowed here and in every Slipway process a test starts (they inherit the environment).
os.environ.setdefault("SLIPWAY_TEST_RUNTIMES", "1")

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
FIXTURES = SHARED / "fixtures"


def services_required() -> bool:
    return os.environ.get("SLIPWAY_REQUIRE_SERVICES", "").lower() in {"1", "true", "yes", "on"}


def require_service(ok: bool, what: str) -> None:
    """Skip locally, fail in CI, when a service or tool the test needs is missing."""
    if ok:
        return
    if services_required():
        pytest.fail(f"required service missing: {what}", pytrace=False)
    pytest.skip(f"service missing: {what}")


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_tool(name: str) -> str:
    path = shutil.which(name)
    require_service(path is not None, f"`{name}` on PATH")
    return path


def pipeline_cmd(*args: str) -> tuple[int, str, str]:
    """`manage.py pipeline ARGS` in-process: (exit code, stdout, stderr)."""
    import io

    from django.core.management import call_command

    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("pipeline", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing():
    """Personas get passwords; the default PBKDF2 costs ~1 s each on 2 cores."""
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Settings were read before this file (pytest-django loads them first).
    settings.SLIPWAY_TEST_RUNTIMES = True


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    require_service(FIXTURES.is_dir(), f"../shared/fixtures at {FIXTURES}")
    return FIXTURES


@pytest.fixture
def personas(db):
    from django.contrib.auth import get_user_model

    User = get_user_model()
    return {
        name: User.objects.create_user(username=name, password=f"{name}-pw")
        for name in ("alice", "bob", "ronnie", "charlie")
    }


@pytest.fixture
def project(db, personas):
    """A project owned by alice, with bob a member and ronnie read-only."""
    from devops.controller.projects import do_create_project
    from devops.models import ProjectMember, Role

    p = do_create_project("demo", owner=personas["alice"])
    ProjectMember.objects.create(project=p, user=personas["bob"], role=Role.MEMBER)
    ProjectMember.objects.create(project=p, user=personas["ronnie"], role=Role.READ_ONLY)
    return p


# Shared image fixtures (tests/images.py): `busybox_image`, built locally into buildah storage.
from tests.images import busybox_image  # noqa: F401
