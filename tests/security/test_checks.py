"""System checks for dangerous configurations: one test per stable id (README "System checks")."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.checks import run_checks


def ids() -> list[str]:
    return sorted(m.id for m in run_checks() if m.id in {"slipway.W020", "slipway.W021", "slipway.W022",
                                                          "slipway.W023", "slipway.W024"})


@pytest.fixture
def safe(settings, monkeypatch):
    """A configuration none of the security checks objects to."""
    monkeypatch.setenv("SLIPWAY_HOST", "127.0.0.1")
    settings.ALLOWED_HOSTS = ["*"]
    settings.PUBLIC_URL = "http://127.0.0.1:8000"
    settings.ENCRYPTION_KEY_DERIVED = False
    settings.SLIPWAY_STEP_RUNTIME = "auto"
    settings.SLIPWAY_SIGNUP = "closed"
    settings.SLIPWAY_TESTING = False
    return settings


def test_a_safe_configuration_passes(safe):
    assert ids() == []


@pytest.mark.parametrize("bind,public", [("0.0.0.0", "http://127.0.0.1:8000"),
                                         ("127.0.0.1", "https://ci.example.com"),
                                         ("::", "http://[::1]:8000")])
def test_w020_allowed_hosts_star_beyond_loopback(safe, monkeypatch, bind, public):
    monkeypatch.setenv("SLIPWAY_HOST", bind)
    safe.PUBLIC_URL = public
    assert ids() == ["slipway.W020"]
    safe.ALLOWED_HOSTS = ["ci.example.com"]
    assert ids() == []


def test_w020_not_on_loopback_only(safe, monkeypatch):
    monkeypatch.setenv("SLIPWAY_HOST", "localhost")
    safe.PUBLIC_URL = "http://127.0.0.2:9000"
    assert ids() == []


def test_w021_encryption_key_derived_from_the_secret_key(safe):
    safe.ENCRYPTION_KEY_DERIVED = True
    assert ids() == ["slipway.W021"]


def test_w021_follows_the_environment(tmp_path):
    """The settings flag is what SLIPWAY_ENCRYPTION_KEY says at start-up."""
    code = "import django; django.setup(); from django.conf import settings; print(settings.ENCRYPTION_KEY_DERIVED)"
    env = {"DJANGO_SETTINGS_MODULE": "devops.settings", "PATH": os.environ["PATH"],
           "SLIPWAY_DATA_DIR": str(tmp_path)}
    unset = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    given = subprocess.run([sys.executable, "-c", code], env={**env, "SLIPWAY_ENCRYPTION_KEY": "k" * 40},
                           capture_output=True, text=True, check=True)
    assert (unset.stdout.strip(), given.stdout.strip()) == ("True", "False")


def test_w024_dummy_runtime_outside_tests(safe):
    safe.SLIPWAY_STEP_RUNTIME = "dummy"
    assert ids() == ["slipway.W024"]
    safe.SLIPWAY_TESTING = True
    assert ids() == []


def test_w022_host_runtime_outside_tests(safe):
    safe.SLIPWAY_STEP_RUNTIME = "host"
    assert ids() == ["slipway.W022"]


def test_w023_signup_open(safe):
    safe.SLIPWAY_SIGNUP = "open"
    assert ids() == ["slipway.W023"]
