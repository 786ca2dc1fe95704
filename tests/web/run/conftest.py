"""Fixtures of the execution page's tests: a pipeline with runs made through the actions' own path."""
from __future__ import annotations

import pytest

from tests.controller import conftest as controller_fixtures
from tests.controller.conftest import make_config, new_execution
from tests.logs.conftest import log_settings  # noqa: F401  (a file log store, for the inline viewer)

data_dir = controller_fixtures.data_dir  # the controller tests' DATA_DIR fixture, shared



@pytest.fixture
def pipeline(project, data_dir):
    from devops.models import Pipeline

    return Pipeline.objects.create(project=project, name="web", repository_url="/nonexistent/repo",
                                   default_branch="master")


@pytest.fixture
def run(pipeline):
    """Run 1 of `pipeline`: Clone + one stage of one step, Waiting."""
    return new_execution(pipeline, make_config([{}]))


# --- the browser tests: a live daphne + a separate controller sharing the test database, chromium ---

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


class Slipway:
    """`./slipway up`'s shape: daphne (web) and `runcontroller` as two processes, no Redis.

    Call `start()` once the test's rows exist (on SQLite the in-memory test
    database is copied to a file both processes open). `kill_web()` /
    `start_web()` drop and bring back the web server on the same port (a
    network drop for the browser); the controller keeps running.
    """

    def __init__(self, tmp_path, personas):
        self.tmp_path, self.personas = tmp_path, personas
        self.web = self.controller = None
        self.sessions: dict[str, str] = {}
        self.port = 0

    def _env(self) -> dict:
        import os

        from django.conf import settings

        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        env.update({
            # The sessions (and encrypted fields) written here must read there:
            # the same key, through the environment (never argv).
            "SLIPWAY_SECRET_KEY": settings.SECRET_KEY,
            "DJANGO_SETTINGS_MODULE": "devops.settings", "DATABASE_URL": self.database_url,
            "SLIPWAY_DATA_DIR": str(self.tmp_path / "data"),
            "SLIPWAY_LOG_STORE": f"file://{self.tmp_path / 'data' / 'logs'}",
            "SLIPWAY_WORKSPACE_DIR": str(self.tmp_path / "data" / "workspaces"),
            "SLIPWAY_STEP_RUNTIME": "dummy", "SLIPWAY_TEST_RUNTIMES": "1",
            "SLIPWAY_EMBEDDED_CONTROLLER": "0", "SLIPWAY_LOG_LEVEL": "WARNING",
        })
        return env

    def start(self) -> str:
        import subprocess
        import sys

        from django.conf import settings
        from django.test import Client

        from tests.logs.conftest import ROOT, free_port
        from tests.logs.test_live_daphne import database_url_for_subprocess

        for name, user in self.personas.items():
            c = Client()
            c.force_login(user)
            self.sessions[name] = c.cookies[settings.SESSION_COOKIE_NAME].value
        self.database_url = database_url_for_subprocess(self.tmp_path)
        self.port = free_port()
        self.controller = subprocess.Popen([sys.executable, "manage.py", "runcontroller"], cwd=ROOT,
                                           env=self._env(), stdout=subprocess.DEVNULL)
        self.start_web()
        return self.url

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_web(self) -> None:
        import os
        import subprocess
        import sys

        from tests.logs.conftest import ROOT, wait_port

        daphne = os.path.join(os.path.dirname(sys.executable), "daphne")
        self.web = subprocess.Popen([daphne, "-b", "127.0.0.1", "-p", str(self.port), "devops.asgi:application"],
                                    cwd=ROOT, env=self._env(), stdout=subprocess.DEVNULL)
        wait_port(self.port, self.web, 60)

    def kill_web(self) -> None:
        self.web.kill()   # SIGKILL: the sockets drop without a close frame (1006), as on a network failure
        self.web.wait(10)

    def stop_run(self, name: str) -> None:
        """`do_stop` in a third process (as a CLI would): the change is committed without the web server."""
        import subprocess
        import sys

        from tests.logs.conftest import ROOT

        code = ("from devops.controller.actions import do_stop; from devops.models import PipelineExecution; "
                f"assert do_stop(PipelineExecution.objects.get(name={name!r}))")
        subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=self._env(),
                       check=True, capture_output=True, timeout=120)

    def execution_state(self, name: str) -> str:
        """The state as committed (read beside the servers, not through them)."""
        if self.database_url.startswith("sqlite:///"):
            import sqlite3

            with sqlite3.connect(self.database_url[len("sqlite:///"):]) as db:
                row = db.execute("SELECT execution_state FROM devops_pipelineexecution WHERE name = ?",
                                 [name]).fetchone()
        else:
            import psycopg

            with psycopg.connect(self.database_url.replace("postgres://", "postgresql://", 1)) as db:
                row = db.execute("SELECT execution_state FROM devops_pipelineexecution WHERE name = %s",
                                 [name]).fetchone()
        return row[0] if row else ""

    def stop(self) -> None:
        from tests.logs.conftest import stop

        for proc in (self.web, self.controller):
            if proc is not None and proc.poll() is None:
                stop(proc)


@pytest.fixture(autouse=True)
def _no_session_daphne(web_daphne):
    """These tests drive their own controller (or none): the session's daphne and its embedded
    controller must not claim their executions (tests/web/conftest.py `_Daphne`)."""
    web_daphne.stop()


@pytest.fixture
def slipway(transactional_db, tmp_path, personas, data_dir):
    s = Slipway(tmp_path, personas)
    yield s
    s.stop()


@pytest.fixture
def page_as(slipway):
    """page_as("bob") -> a chromium page signed in as that persona.

    Chromium starts on the first call, after `slipway.start()`: Playwright's
    sync API runs an event loop in this thread, and Django refuses database
    calls from a thread with a running loop, so every row is written before.
    """
    from django.conf import settings

    from tests.conftest import require_tool

    state: dict = {}

    def open_as(name: str):
        if not state:
            from playwright.sync_api import sync_playwright

            require_tool(CHROMIUM)
            state["pw"] = sync_playwright().start()
            state["browser"] = state["pw"].chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        ctx = state["browser"].new_context(base_url=slipway.url)
        ctx.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": slipway.sessions[name],
                          "url": slipway.url}])
        page = ctx.new_page()
        page.dialogs = []
        page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
        return page

    yield open_as
    if state:
        state["browser"].close()
        state["pw"].stop()
