"""The README's first command: `manage.py up` (what `./slipway up` runs after installing)."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import require_service

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_up_migrates_makes_admin_starts_web_and_controller(tmp_path):
    port = _free_port()
    env = dict(os.environ, SLIPWAY_DATA_DIR=str(tmp_path / "data"), SLIPWAY_PORT=str(port))
    env.pop("DATABASE_URL", None)  # the embedded default: SQLite in the data dir
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "up"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        url = None
        while time.monotonic() < deadline and url is None:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"running at (http://\S+)", line)
            if m:
                url = m.group(1)
        out = "".join(lines)
        assert url == f"http://127.0.0.1:{port}/", out
        password = re.search(r"password '([^']+)'", out).group(1)
        assert len(password) >= 12
        assert (tmp_path / "data" / "slipway.sqlite3").exists()
        # The web server answers (daphne may need a moment after printing).
        for _ in range(100):
            try:
                with urllib.request.urlopen(url + "api/docs/", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("web server did not answer:\n" + out)
        # `/` is the UI: anonymous visitors land on the login page; the first project is ready.
        with urllib.request.urlopen(url, timeout=10) as r:
            assert r.url.startswith(url + "accounts/login/") and b"Sign In" in r.read()
        assert re.search(r"first project 'default' is ready: add a pipeline at "
                         + re.escape(url) + r"p/p-[a-z0-9]+/pipelines/new", out), out
        # The controller is running: its process is a child of `up`.
        children = subprocess.run(["pgrep", "-f", "-s", str(proc.pid), "runcontroller"],
                                  capture_output=True, text=True).stdout.split()
        assert children, out
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    assert proc.returncode == 0


def test_first_admin_from_the_environment_keeps_its_password_out_of_the_output(db, monkeypatch):
    import io

    from django.contrib.auth import authenticate

    from devops.management.commands.up import Command

    monkeypatch.setenv("SLIPWAY_ADMIN_USER", "boss")
    monkeypatch.setenv("SLIPWAY_ADMIN_PASSWORD", "env-given-pw-4711")
    out = io.StringIO()
    Command(stdout=out)._first_admin()
    assert "boss" in out.getvalue() and "env-given-pw-4711" not in out.getvalue()
    assert authenticate(username="boss", password="env-given-pw-4711").is_superuser
    Command(stdout=out)._first_admin()  # an admin exists: nothing more is made or printed
    assert out.getvalue().count("boss") == 1


def test_up_makes_a_first_project_owned_by_the_admin_once(db, settings, tmp_path):
    import io

    from devops.management.commands.up import Command
    from devops.models import Project, Role

    settings.DATA_DIR = tmp_path  # the sample pipeline's repository goes there
    out = io.StringIO()
    assert Command(stdout=out)._first_project() is None  # no admin yet: nothing to own it
    Command(stdout=out)._first_admin()
    project = Command(stdout=out)._first_project()
    assert project.name == "default" and project.settings.count() > 0
    assert project.members.get().role == Role.OWNER and project.members.get().user.is_superuser
    assert Command(stdout=out)._first_project() is None and Project.objects.count() == 1


def test_the_first_project_has_a_sample_pipeline_ready_to_run(db, settings, tmp_path):
    """A newcomer's first click can be Run: `hello`'s repository and file are real and valid."""
    import io

    from devops.controller.actions import do_run, read_source
    from devops.management.commands.up import SAMPLE_PIPELINE, Command
    from devops.models import ExecutionState

    settings.DATA_DIR = tmp_path
    out = io.StringIO()
    Command(stdout=out)._first_admin()
    project = Command(stdout=out)._first_project()
    pipeline = project.pipelines.get()
    assert pipeline.name == "hello" and pipeline.repository_url == (tmp_path / "sample" / "hello").as_uri()
    written = (tmp_path / "sample" / "hello" / ".devops.yml").read_text()
    assert read_source(pipeline, branch=None).config_text == written
    assert written.startswith(SAMPLE_PIPELINE.split("{", 1)[0]) and "{image}" not in written
    execution = do_run(pipeline, branch=None, user=project.members.get().user, trigger_type="user")
    assert execution.execution_state == ExecutionState.WAITING and execution.branch == "main"
    assert "sample pipeline 'hello'" in out.getvalue()


@pytest.mark.slow
@pytest.mark.browser
def test_a_newcomer_runs_the_sample_from_the_browser_to_success(tmp_path, monkeypatch):
    """README's promise end to end: `up` with its defaults (this machine's step runtime, no
    internet needed), sign in as the printed admin, Run `hello`, land on the run: Success, its log."""
    from playwright.sync_api import expect, sync_playwright

    from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS

    require_service(os.path.exists(CHROMIUM), f"Debian's chromium at {CHROMIUM}")
    port = _free_port()
    env = dict(os.environ, SLIPWAY_DATA_DIR=str(tmp_path / "data"), SLIPWAY_PORT=str(port), PYTHONUNBUFFERED="1")
    for name in ("DATABASE_URL", "SLIPWAY_STEP_RUNTIME", "SLIPWAY_TEST_RUNTIMES"):
        env.pop(name, None)  # the defaults a newcomer has
    proc = subprocess.Popen([sys.executable, "manage.py", "up"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    try:
        while not any("running at" in line for line in lines):
            line = proc.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        out = "".join(lines)
        url = re.search(r"running at (http://\S+)", out).group(1)
        password = re.search(r"password '([^']+)'", out).group(1)
        monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(base_url=url)
            for _ in range(100):  # daphne may need a moment after printing
                try:
                    page.goto("/")
                    break
                except Exception:
                    time.sleep(0.1)
            page.get_by_label("Username").fill("admin")
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Sign In").click()
            page.get_by_role("link", name="default").click()
            page.get_by_role("row", name=re.compile(r"^hello ")).get_by_role("button", name="Run").click()
            page.get_by_role("dialog", name="Run hello").get_by_role("button", name="Start run").click()
            expect(page).to_have_url(re.compile(r"/pipelines/hello/runs/1/$"))
            # the controller runs it with this machine's default runtime; the page follows live
            expect(page.locator("#run-state")).to_have_text("Success", timeout=120_000)
            expect(page.get_by_role("log")).to_contain_text("Hello from your first Slipway pipeline")
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
