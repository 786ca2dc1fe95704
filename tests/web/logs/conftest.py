"""Log viewer fixtures: the API's world (personas, a pipeline with runs), a file
log store, and for the browser tests a live daphne sharing the test database
with Debian's Chromium driven by Playwright (never a downloaded browser)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.api.conftest import client_as, world  # noqa: F401
from tests.conftest import require_service
from tests.logs.conftest import ROOT, free_port, log_settings, stop, wait_port  # noqa: F401

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture
def live_daphne(tmp_path, log_settings):  # noqa: F811
    """start() -> base URL of a daphne serving devops.asgi with this test's rows
    (committed: use with django_db(transaction=True)) and log store."""
    import subprocess

    from django.conf import settings

    from tests.logs.test_live_daphne import database_url_for_subprocess

    procs = []

    def start() -> str:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        env.update({
            "DJANGO_SETTINGS_MODULE": "devops.settings",
            "DATABASE_URL": database_url_for_subprocess(tmp_path),
            "SLIPWAY_LOG_STORE": log_settings.SLIPWAY_LOG_STORE,
            "SLIPWAY_DATA_DIR": str(tmp_path / "data"),
            "SLIPWAY_LOG_LEVEL": "WARNING",
            "SLIPWAY_SECRET_KEY": settings.SECRET_KEY,   # the sessions browser_as signs
        })
        proc = subprocess.Popen([str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port),
                                 "devops.asgi:application"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        wait_port(port, proc, 30)
        return f"http://127.0.0.1:{port}"

    yield start
    for p in procs:
        stop(p)


# Module scope, not session: Playwright's sync API keeps an event loop running
# in this thread while it is open, and later tests call asyncio.run().
@pytest.fixture(scope="module")
def chromium():
    require_service(os.path.exists(CHROMIUM), f"Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; Django's ORM
    # (fixtures, teardown) refuses to run beside one unless told it is safe:
    # it is, nothing else touches the connection meanwhile.
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if before is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture
def browser_as(chromium, personas):
    """browser_as("ronnie") -> open(base_url) -> a Playwright page signed in as that persona.

    The persona's session row is saved at once, so call it before live_daphne's
    start() (a SQLite test database is copied then); daphne shares this
    process's SECRET_KEY, so it accepts the session cookie."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    contexts = []

    def make(persona: str):
        user = personas[persona]
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.save()

        def open_page(base_url: str):
            ctx = chromium.new_context(base_url=base_url, accept_downloads=True,
                                       viewport={"width": 1280, "height": 800})
            ctx.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session.session_key,
                              "url": base_url}])
            contexts.append(ctx)
            return ctx.new_page()

        return open_page

    yield make
    for c in contexts:
        c.close()
