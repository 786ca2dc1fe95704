"""Pluggable kinds in one table each (devops/kinds.py), and the checks built from them.

Engines, step runtimes, SCM provider types and image-webhook types: choices,
settings validation and system checks come from the table; a configured
engine or runtime whose module is missing fails `manage.py check` with a
stable id (slipway.E020 / E021) instead of `runcontroller` dying later.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import run_checks

from devops.kinds import Kind, KindNotFound, KindTable, KindUnavailable

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SLIPWAY_")}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**clean, "DJANGO_SETTINGS_MODULE": "devops.settings", **env})


# --- the generic table ----------------------------------------------------------------------------

def test_a_table_loads_lazily_and_says_why_a_row_cannot_load(tmp_path, monkeypatch):
    (tmp_path / "kinds_broken.py").write_text("import kinds_missing_dependency\nX = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    table = KindTable(
        "widget",
        Kind("json", "JSON", "json.dumps"),
        Kind("module", "A module", "json"),
        Kind("gone", "Not written", "kinds_not_written.Widget"),
        Kind("broken", "Broken import", "kinds_broken.X"),
        Kind("noattr", "No such attribute", "json.no_such_thing"),
        Kind("fake", "Tests only", "json.loads", test_only=True),
    )
    assert "kinds_broken" not in sys.modules  # nothing imported until load()
    assert table.names() == ("json", "module", "gone", "broken", "noattr")
    assert table.names(test=True)[-1] == "fake" and ("fake", "Tests only") in table.choices(test=True)
    assert ("fake", "Tests only") not in table.choices()
    import json

    assert table.load("json") is json.dumps and table.load("module") is json
    with pytest.raises(KindNotFound, match="unknown widget 'nope'"):
        table.load("nope")
    with pytest.raises(KindUnavailable, match="No module named 'kinds_not_written'"):
        table.load("gone")
    # A module that exists but imports something missing names the missing thing.
    with pytest.raises(KindUnavailable, match="No module named 'kinds_missing_dependency'"):
        table.load("broken")
    with pytest.raises(KindUnavailable, match="no attribute 'no_such_thing'"):
        table.load("noattr")
    with pytest.raises(ValueError, match="twice"):
        KindTable("widget", Kind("a", "A", "json"), Kind("a", "A again", "json"))


# --- the four tables and what is built from them ----------------------------------------------------

def test_choices_and_settings_are_built_from_the_tables():
    from django.conf import settings

    from devops.api.serializers import ImageWebHookSerializer
    from devops.engines.local.runtimes import RUNTIMES
    from devops.engines.registry import ENGINES
    from devops.models import SourceCodeCredential, SourceCodeProviderConfig
    from devops.scm.providers import GENERIC_GIT, PROVIDERS, oauth_apps
    from devops.triggers.image_webhooks import IMAGE_WEBHOOKS

    assert ENGINES.names() == ("local", "jenkins")
    assert RUNTIMES.names() == ("container", "sandbox", "host")          # dummy is test-only
    assert RUNTIMES.names(test=True) == ("container", "sandbox", "host", "dummy")
    assert SourceCodeProviderConfig._meta.get_field("type").choices == PROVIDERS.choices()
    assert SourceCodeCredential._meta.get_field("source_code_type").choices == [*PROVIDERS.choices(), GENERIC_GIT]
    assert dict(ImageWebHookSerializer().fields["imageType"].choices) == dict(IMAGE_WEBHOOKS.choices())
    assert set(oauth_apps()) <= set(settings.INSTALLED_APPS)
    assert IMAGE_WEBHOOKS.load("builtin").__name__ == "devops.triggers.registry_events"


def test_select_runtime_and_local_options_use_the_table(tmp_path):
    from devops.engines.local.options import LocalOptions
    from devops.engines.local.runtimes import RUNTIMES, select_runtime

    for kind in RUNTIMES:
        runtime = select_runtime(kind.name, tmp_path)
        assert isinstance(runtime, RUNTIMES.load(kind.name)) and runtime.name == kind.name
    with pytest.raises(ValueError, match="unknown step runtime 'podman'"):
        select_runtime("podman", tmp_path)
    with pytest.raises(ValueError, match="must be one of auto, container, sandbox, host, dummy"):
        LocalOptions(data_dir=tmp_path, workspace_dir=tmp_path, log_store_url="file:///x", step_runtime="podman")


# --- system checks ---------------------------------------------------------------------------------

def test_a_configured_engine_that_cannot_be_imported_fails_the_check(settings, monkeypatch):
    from devops.engines import registry

    # A row of the table whose package does not exist (jenkins has one now).
    monkeypatch.setitem(registry.ENGINES._kinds, "ghost",
                        Kind("ghost", "Not written", "devops.engines.ghost.engine.GhostEngine"))
    settings.SLIPWAY_ENGINE = "ghost"
    errors = [e for e in run_checks() if e.id == "slipway.E020"]
    assert len(errors) == 1
    assert "SLIPWAY_ENGINE='ghost'" in errors[0].msg and "devops.engines.ghost" in errors[0].msg
    assert errors[0].hint == "installed: local, jenkins"
    settings.SLIPWAY_ENGINE = "jenkins"   # its module exists now: no E020 (its own checks are E030-E034)
    assert not [e for e in run_checks() if e.id == "slipway.E020"]
    settings.SLIPWAY_ENGINE = "local"
    assert not [e for e in run_checks() if e.id == "slipway.E020"]


def test_a_configured_runtime_whose_module_fails_to_import_fails_the_check(settings, monkeypatch):
    settings.SLIPWAY_STEP_RUNTIME = "sandbox"
    assert not [e for e in run_checks() if e.id == "slipway.E021"]
    # None in sys.modules: the import of that module fails (as a broken install would).
    monkeypatch.setitem(sys.modules, "devops.engines.local.runtimes.sandbox", None)
    errors = [e for e in run_checks() if e.id == "slipway.E021"]
    assert len(errors) == 1 and "SLIPWAY_STEP_RUNTIME='sandbox'" in errors[0].msg
    settings.SLIPWAY_STEP_RUNTIME = "auto"  # auto may pick sandbox: checked too
    assert [e.id for e in run_checks() if e.id == "slipway.E021"] == ["slipway.E021"]


def test_the_dummy_runtime_is_for_tests_only(settings):
    settings.SLIPWAY_STEP_RUNTIME = "dummy"
    settings.SLIPWAY_TEST_RUNTIMES = True        # tests/conftest.py's setting: flagged
    found = {e.id: e for e in run_checks() if e.id in ("slipway.W025", "slipway.E022")}
    assert list(found) == ["slipway.W025"] and "dummy" in found["slipway.W025"].msg
    settings.SLIPWAY_TEST_RUNTIMES = False
    found = {e.id for e in run_checks() if e.id in ("slipway.W025", "slipway.E022")}
    assert found == {"slipway.E022"}


def test_manage_py_check_fails_for_jenkins_and_runcontroller_stops_at_the_check(tmp_path):
    """The operator's view (issues 9, 13): jenkins without its settings fails `check` naming each
    setting (E030 URL, E031 user/token, E033 kubeconfig), and runcontroller stops at the check."""
    env = {"SLIPWAY_DATA_DIR": str(tmp_path), "SLIPWAY_ENGINE": "jenkins"}
    check = _manage("check", **env)
    assert check.returncode == 1 and "slipway.E020" not in check.stderr
    for check_id, setting in (("E030", "SLIPWAY_JENKINS_URL"), ("E031", "SLIPWAY_JENKINS_TOKEN"),
                              ("E033", "SLIPWAY_KUBECONFIG")):
        assert f"slipway.{check_id}" in check.stderr and setting in check.stderr
    run = _manage("runcontroller", "--once", **env)
    assert run.returncode != 0 and "slipway.E030" in run.stderr
    assert "Traceback" not in run.stderr
    assert _manage("check", SLIPWAY_DATA_DIR=str(tmp_path)).returncode == 0


def test_settings_refuse_the_dummy_runtime_outside_tests(tmp_path):
    env = {"SLIPWAY_DATA_DIR": str(tmp_path), "SLIPWAY_STEP_RUNTIME": "dummy"}
    refused = _manage("check", **env)
    assert refused.returncode != 0
    assert "SLIPWAY_STEP_RUNTIME='dummy' is for tests only" in refused.stderr
    allowed = _manage("check", SLIPWAY_TEST_RUNTIMES="1", **env)
    assert allowed.returncode == 0 and "slipway.W025" in allowed.stderr
