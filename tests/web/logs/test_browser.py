"""The log viewer in a real browser: Debian's Chromium (Playwright) against a live daphne.

Colours shown, a `<script>` line is text, follow while lines arrive live
(and stop / resume), search finds a line outside the rendered window and
jumps to it, a line anchor highlights its line on load, folds, timestamps,
and the raw download equals the stored bytes.
"""
from __future__ import annotations

import re

import pytest

from devops.logs import LogKey, get_log_store
from tests.api.conftest import add_execution

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]

BIG = 6000


def _row(page, n: int, step: str = "1.0"):
    return page.locator(f'[id="s{step}-L{n}"]')


@pytest.fixture
def logs(log_settings, world):
    """Run 1 step 1.0: a finished log of BIG+ lines; run 3 step 1.0: a running one (writer open)."""
    store = get_log_store()
    done = world["executions"][0]
    w = store.writer(LogKey(done.name, 1, 0))
    head = (b"\x1b[31mred text\x1b[0m plain\n"
            b"<script>alert(1)</script>\n"
            b"::group::Deps\n"
            b"inside the group\n"
            b"::endgroup::\n"
            b"[slipway] host runtime\n")
    body = b"".join(b"line %d \x1b[32mok\x1b[0m\n" % n if n != 4321 else b"needle-4321 here\n"
                    for n in range(7, BIG + 1))
    w.write(head)
    w.write(body)
    w.close()
    running = add_execution(world["pipeline"], 3, state="Building")
    live = store.writer(LogKey(running.name, 1, 0))
    live.write(b"".join(b"early %d\n" % n for n in range(1, 11)))
    yield {"done": done, "running": running, "live": live, "bytes": head + body}
    live.close()


def _url(e, anchor: str = "") -> str:
    return f"/p/{e.project_id}/pipelines/{e.pipeline.name}/runs/{e.run}/logs/1.0/{anchor}"


def test_the_viewer_shows_colours_text_search_anchor_folds_timestamps_and_downloads_raw(
        logs, live_daphne, browser_as):
    from playwright.sync_api import expect

    open_page = browser_as("ronnie")
    page = open_page(live_daphne())
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(_url(logs["done"]))

    pane = page.get_by_role("log")
    expect(pane).to_be_visible()
    expect(page.get_by_role("button", name="Load earlier lines")).to_be_hidden()   # at the top: nothing earlier
    red = _row(page, 1).locator(".lx span.a-f1")
    expect(red).to_have_text("red text")
    assert red.evaluate("e => getComputedStyle(e).color") == "rgb(248, 113, 113)"
    expect(_row(page, 2).locator(".lx")).to_have_text("<script>alert(1)</script>")
    assert _row(page, 2).locator("script").count() == 0 and dialogs == []
    expect(_row(page, 6).locator(".lw")).to_have_text("slipway")
    assert page.locator(".ll").count() <= 3000

    # A fold: the group's header folds its lines.
    page.get_by_role("button", name="Deps").click()
    expect(_row(page, 4)).to_be_hidden()
    page.get_by_role("button", name="Deps").click()
    expect(_row(page, 4)).to_be_visible()

    # Timestamps from the stored per-line times.
    page.get_by_label("Timestamps").select_option("absolute")
    expect(_row(page, 1).locator(".lt")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d\.\d{3}$"))

    # Search: line 4321 is far outside the rendered window (lines 1..500).
    assert _row(page, 4321).count() == 0
    page.get_by_label("Search").fill("NEEDLE-4321")
    page.get_by_label("Search").press("Enter")
    expect(page.locator(".lv-found")).to_have_text("1 of 1 (line 4321)")
    expect(_row(page, 4321)).to_have_class(re.compile(r"\bhit\b"))
    expect(_row(page, 4321)).to_be_in_viewport()
    assert page.locator(".ll").count() <= 3000

    # Raw download: byte-exact.
    with page.expect_download() as got:
        page.get_by_role("link", name="Download").click()
    with open(got.value.path(), "rb") as f:
        assert f.read() == logs["bytes"]

    # A line anchor, opened fresh: the window around it is loaded and the line highlighted.
    page.goto(_url(logs["done"], "#s1.0-L5555"))
    expect(_row(page, 5555)).to_have_class(re.compile(r"\btarget\b"))
    expect(_row(page, 5555)).to_be_in_viewport()
    assert dialogs == []


def test_follow_shows_live_lines_stops_when_scrolled_up_and_resumes_at_the_bottom(logs, live_daphne, browser_as):
    from playwright.sync_api import expect

    open_page = browser_as("bob")
    page = open_page(live_daphne())
    page.goto(_url(logs["running"]))
    follow = page.get_by_label("Follow")
    expect(follow).to_be_checked()
    expect(_row(page, 10)).to_be_visible()
    page.get_by_role("log").evaluate("e => e.scrollIntoView({block: 'end'})")   # the whole pane in the window

    live = logs["live"]
    live.write(b"".join(b"live %d\n" % n for n in range(11, 1011)))   # 1000 lines arrive while following
    expect(_row(page, 1010)).to_be_in_viewport()
    expect(follow).to_be_checked()

    page.get_by_role("log").hover()
    page.mouse.wheel(0, -2000)                                         # the user scrolls up: follow stops
    expect(follow).not_to_be_checked()
    live.write(b"after scrolling up\n")
    expect(page.get_by_role("button", name="Load later lines")).to_be_visible()
    expect(_row(page, 1011)).to_have_count(0)

    page.get_by_role("button", name="Bottom").click()                  # back at the bottom: following again
    expect(_row(page, 1011)).to_be_in_viewport()
    expect(follow).to_be_checked()
    live.write(b"one more\n")
    expect(_row(page, 1012)).to_be_in_viewport()

    # The connection drops: the viewer reconnects from the byte offset it had reached.
    stored = get_log_store().size(LogKey(logs["running"].name, 1, 0))
    with page.expect_websocket(lambda ws: "offset=" in ws.url) as again:
        page.evaluate("() => document.querySelector('[data-log-viewer]')._lv.ws.close()")
    assert again.value.url.endswith(f"&offset={stored}")
    live.write(b"after the reconnect\n")
    expect(_row(page, 1013)).to_be_in_viewport()
    expect(_row(page, 1013)).to_have_text(re.compile("after the reconnect"))
    numbers = page.locator(".ll").evaluate_all("rows => rows.map(r => +r.dataset.n)")
    assert numbers == list(range(numbers[0], 1014))                    # nothing twice, nothing lost
    live.close()
    expect(page.locator(".lv-state")).to_have_text("Complete")
