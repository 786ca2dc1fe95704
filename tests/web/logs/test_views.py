"""The log viewer's pages (devops/web/views_logs.py): who sees them, and what they hold."""
from __future__ import annotations

import pytest
from django.test import Client

from devops.logs import LogKey, get_log_store

LOG = (b"\x1b[0Ksection_start:1700000000:deps\r\x1b[0K\x1b[1mInstall\x1b[0m\n"
       b"\x1b[31m<script>alert(1)</script>\n"
       b"still red\x1b[0m\n"
       b"\x1b[0Ksection_end:1700000001:deps\r\x1b[0K\n"
       b"+ make test\n"
       b"[slipway] host runtime\n")


@pytest.fixture
def logged(log_settings, world):
    execution = world["executions"][0]
    w = get_log_store().writer(LogKey(execution.name, 1, 0))
    w.write(LOG)
    w.close()
    return execution


def _url(e, suffix=""):
    return f"/p/{e.project_id}/pipelines/{e.pipeline.name}/runs/{e.run}/logs/1.0/{suffix}"


def _client(personas, who):
    c = Client()
    if who:
        c.force_login(personas[who])
    return c


@pytest.mark.parametrize(("persona", "status"), [("alice", 200), ("bob", 200), ("ronnie", 200), ("charlie", 404)])
def test_members_see_the_viewer_and_others_get_404(logged, personas, persona, status):
    assert _client(personas, persona).get(_url(logged)).status_code == status
    assert _client(personas, persona).get(_url(logged, "lines")).status_code == status


def test_anonymous_goes_to_the_login_page(logged):
    r = Client().get(_url(logged))
    assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")


def test_the_page_renders_colours_sections_and_escapes_the_log(logged, personas):
    r = _client(personas, "ronnie").get(_url(logged))
    body = r.content.decode()
    assert "<html" in body and 'role="log"' in body
    assert "<script>alert(1)</script>" not in body
    assert '<span class="a-f1">&lt;script&gt;alert(1)&lt;/script&gt;</span>' in body
    assert '<span class="a-f1">still red</span>' in body           # the colour carried to the next line
    assert 'id="s1.0-L1" data-n="1"' in body and 'data-fold="start"' in body
    assert '<span class="a-bold">Install</span>' in body             # the section's header, not its marker
    assert 'data-fold="command"' in body and "k-slipway" in body


def test_an_htmx_request_gets_only_the_fragment(logged, personas):
    r = _client(personas, "bob").get(_url(logged), HTTP_HX_REQUEST="true")
    body = r.content.decode()
    assert "<html" not in body and body.lstrip().startswith('<div class="logviewer"') and "data-log-viewer" in body


def test_lines_pages_carry_the_colour_state_and_say_where_they_are(logged, personas):
    c = _client(personas, "bob")
    first = c.get(_url(logged, "lines"), {"from": 1, "limit": 2})
    assert (first["X-Log-First"], first["X-Log-Next"], first["X-Log-More"]) == ("1", "3", "true")
    assert first["X-Log-Sgr"] == "1.."
    later = c.get(_url(logged, "lines"), {"from": 3, "limit": 2, "sgr": first["X-Log-Sgr"]})
    assert '<span class="a-f1">still red</span>' in later.content.decode()
    end = c.get(_url(logged, "lines"), {"end": 1, "limit": 2})
    assert end["X-Log-First"] == "5" and end["X-Log-More"] == "false" and end["X-Log-Complete"] == "true"
    around = c.get(_url(logged, "lines"), {"around": 4, "limit": 2})
    assert around["X-Log-First"] == "3"


def test_an_unknown_run_is_404(logged, personas):
    c = _client(personas, "alice")
    assert c.get(_url(logged).replace(f"/runs/{logged.run}/", "/runs/99/")).status_code == 404
