"""The browser harness: a real daphne (HTTP + WebSockets, with the embedded controller) on the test
database, Debian's chromium driven by Playwright, and a logged-in page per persona.

Why a file database: pytest-django's SQLite test database lives in memory and
cannot be opened by another process. When this directory is collected, the
session's SQLite test database becomes a file (`pytest_configure` below, before
any database is set up), so the daphne process reads and writes the very rows a
test commits (`django_db(transaction=True)`). On PostgreSQL the test database is
shared as it is.

Fixtures:
    web_data_dir  session: its data dir (file log store in `logs/`: tests write step logs there)
    web_server    the base URL of the session's daphne (`devops.asgi:application`, `web_daphne`) with
                  SLIPWAY_EMBEDDED_CONTROLLER=1 and the dummy step runtime, so runs started
                  in the browser really run (nothing is executed: `dummy` steps succeed);
                  started on first use, stopped while tests/web/run drive their own controller
    browser       chromium (/usr/bin/chromium; never a downloaded browser), per test
    page_as       `page_as("alice")` -> a Playwright Page logged in as that persona
                  (alice owner, bob member, ronnie read-only, charlie none); None = anonymous
    web_project   the personas' project "demo" (tests/conftest.py `project`), committed
    axe_check     `axe_check(page)` -> the axe-core violations of impact serious/critical
    git_repo      `git_repo(files)` -> a repository served over smart HTTP on loopback
                  that demands a token: (url, username, token)
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import port_open, require_service

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
SCREENSHOTS = ROOT / "docs" / "screenshots"


def pytest_configure(config):
    """Make the session's SQLite test database a file another process can open."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        test = db.setdefault("TEST", {})
        if not test.get("NAME"):
            test["NAME"] = str(Path(tempfile.mkdtemp(prefix="slipway-web-db-")) / "test.sqlite3")


def _subprocess_database_url() -> str:
    from django.db import connection

    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    user = s.get("USER") or "postgres"
    auth = f"{user}:{s['PASSWORD']}" if s.get("PASSWORD") else user
    return f"postgres://{auth}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def web_data_dir(tmp_path_factory):
    """`web_server`'s SLIPWAY_DATA_DIR: its file log store is `web_data_dir / "logs"`."""
    return tmp_path_factory.mktemp("web-data")


class _Daphne:
    """The session's daphne with its embedded controller, started on first use.

    Its controller claims every pending execution on the test database, so it
    must not run while tests that drive their own controller do (tests/web/run:
    it would run their steps with its own runtime): those call `stop()`, and
    the next `url()` starts it again."""

    def __init__(self, database_url: str, data_dir: Path) -> None:
        self.database_url, self.data_dir = database_url, data_dir
        self.proc: subprocess.Popen | None = None
        self.log = None
        self.base = ""

    def url(self) -> str:
        import time

        from django.conf import settings

        if self.proc is not None and self.proc.poll() is None:
            return self.base
        port = _free_port()
        env = {k: v for k, v in os.environ.items()
               if k not in ("REDIS_URL", "SLIPWAY_LOG_STORE", "DJANGO_ALLOW_ASYNC_UNSAFE")}
        env.update({
            "DJANGO_SETTINGS_MODULE": "devops.settings",
            "DATABASE_URL": self.database_url,
            "SLIPWAY_DATA_DIR": str(self.data_dir),
            "SLIPWAY_EMBEDDED_CONTROLLER": "1",
            "SLIPWAY_STEP_RUNTIME": "dummy",
            "SLIPWAY_TEST_RUNTIMES": "1",
            "SLIPWAY_LOG_LEVEL": "WARNING",
            "SLIPWAY_DEBUG": "0",
            # this process's keys: sessions made by `force_login` and credentials encrypted
            # here must be readable there (environment, never a command line)
            "SLIPWAY_SECRET_KEY": settings.SECRET_KEY,
            "SLIPWAY_ENCRYPTION_KEY": settings.ENCRYPTION_KEY,
        })
        self.log = open(self.data_dir / "daphne.log", "ab")
        self.proc = subprocess.Popen([str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1", "-p",
                                      str(port), "devops.asgi:application"], cwd=ROOT, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not port_open("127.0.0.1", port, 0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"daphne did not start:\n{(self.data_dir / 'daphne.log').read_text()[-3000:]}")
            time.sleep(0.1)
        self.base = f"http://127.0.0.1:{port}"
        return self.base

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None
        if self.log is not None:
            self.log.close()
            self.log = None


@pytest.fixture(scope="session")
def web_daphne(django_db_setup, django_db_blocker, web_data_dir):
    """The session's `_Daphne` (not started until a test asks for `web_server`)."""
    with django_db_blocker.unblock():
        database_url = _subprocess_database_url()
    daphne = _Daphne(database_url, web_data_dir)
    yield daphne
    daphne.stop()


@pytest.fixture
def web_server(web_daphne):
    """daphne on a free loopback port, on the test database; its base URL."""
    return web_daphne.url()


@pytest.fixture
def browser(monkeypatch):
    """Chromium for one test. Not session-wide: Playwright's sync API keeps an asyncio loop
    running in this thread while it is started, which would break later tests' asyncio.run()."""
    require_service(os.path.exists(CHROMIUM), f"Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # That loop also trips Django's guard against ORM calls from async code on every
    # query of the test (and pytest-django's flush): the guard is off while it runs.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def web_project(transactional_db, project):
    """tests/conftest.py's `project` ("demo": alice owner, bob member, ronnie read-only), committed."""
    return project


@pytest.fixture
def page_as(transactional_db, personas, web_server, browser):
    """`page_as("bob", width=390)` -> a Page at the live server, logged in as the persona (None: anonymous)."""
    from django.conf import settings
    from django.test import Client

    contexts = []

    def make(persona: str | None, width: int = 1280, height: int = 900):
        context = browser.new_context(base_url=web_server, viewport={"width": width, "height": height})
        contexts.append(context)
        if persona is not None:
            client = Client()
            client.force_login(personas[persona])  # a committed session row in the shared database
            context.add_cookies([{"name": settings.SESSION_COOKIE_NAME,
                                  "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                                  "url": web_server}])
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def axe_check():
    """`axe_check(page)` -> violations of impact serious or critical (axe-core, vendored in tests/web/vendor)."""
    require_service(AXE.exists(), f"axe-core at {AXE}")

    def check(page) -> list[dict]:
        page.add_script_tag(path=str(AXE))
        result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
        return [
            {"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result["violations"] if v["impact"] in ("serious", "critical")
        ]

    return check


PIPELINE_YAML = """\
stages:
- name: Build
  steps:
  - runScriptConfig:
      image: busybox
      shellScript: echo built
"""


@pytest.fixture
def git_repo(tmp_path):
    """`git_repo({".devops.yml": ...}, message=...)` -> (url, username, token) of a repository on a
    loopback smart-HTTP server that refuses requests without the token."""
    from tests.controller.conftest import git, make_repo
    from tests.gitserver import basic, git_http_server

    stack = []
    token, username = "web-token-5a1f", "ci"

    def make(files: dict[str, str] | None = None, *, message: str = "first commit", name: str = "app"):
        work = tmp_path / f"{name}-work"
        make_repo(work, files or {".devops.yml": PIPELINE_YAML})
        if message != "first commit":
            git(work, "commit", "-q", "--amend", "-m", message)
        bare = tmp_path / "srv" / f"{name}.git"
        subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
        server = git_http_server(bare.parent, basic(username, token))
        info = server.__enter__()
        stack.append(server)
        return f"{info.base_url}/{name}.git", username, token

    yield make
    for server in stack:
        server.__exit__(None, None, None)


def screenshot(page, name: str, full_page: bool = False) -> None:
    """Save a 1280 px wide screenshot to docs/screenshots/NAME.png (shown in the README)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


# The API tests' project with one object of every kind and planted secrets (tests/api/conftest.py).
from tests.api.conftest import world  # noqa: E402, F401
