"""The log viewer part of `./slipway bench ui` (README "Benchmarks"; bench_ui.py runs it).

Log viewer on a 100 MiB, ~1.5-million-line step log (ANSI colours on every
line, written in 64 KiB pieces as a runner does), in Debian's Chromium
(Playwright, /usr/bin/chromium) against a real daphne:

1. Time to first lines: navigation -> the first rendered rows in the DOM
   (median of 5). Baseline, same run: the browser fetching the first 64 KiB
   of the raw log (a Range request), i.e. the bytes alone, unrendered.
2. Time to a search result: type a string that is only on a line near the
   end, press Enter -> that line highlighted in view (median of 3). Baseline:
   the browser downloading the whole raw log (what a client-side search would
   have to fetch first).
3. DOM node count and the tab's JS heap (CDP Performance.getMetrics) while
   scrolling: top -> down SCROLL_PAGES pages, Bottom, up SCROLL_PAGES pages
   (BENCH_UI_SCROLL_PAGES, default 300; `all` scrolls the whole log end to
   end, ~3000 pages). Baseline: the same page on a 1,000-line log.

Runs in a child process with its own SLIPWAY_DATA_DIR and SQLite file.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench._net import free_port, wait_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TOTAL = 100 << 20
PIECE = 64 << 10
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]




def _write_log(store, key, total: int, needle_line: int | None) -> int:
    """`total` bytes of coloured lines in PIECE writes; returns the line count."""
    w = store.writer(key)
    n, buf, written = 0, bytearray(), 0
    while written + len(buf) < total:
        n += 1
        if n == needle_line:
            buf += b"\x1b[1;31mFATAL\x1b[0m the-needle-we-search happened here\n"
        else:
            buf += b"[%07d] \x1b[32mok\x1b[0m compiling module \x1b[1mmod_%d\x1b[0m ... done in 12ms\n" % (n, n)
        if len(buf) >= PIECE:
            w.write(bytes(buf[:PIECE]))
            written += PIECE
            del buf[:PIECE]
    w.write(bytes(buf))
    w.close()
    return n


def _metrics(page, cdp) -> tuple[int, float]:
    """(nodes in the document, JS heap used in MiB)."""
    m = {x["name"]: x["value"] for x in cdp.send("Performance.getMetrics")["metrics"]}
    nodes = page.evaluate("() => document.evaluate('count(//node())', document, null, 1, null).numberValue")
    return int(nodes), m.get("JSHeapUsedSize", 0) / (1 << 20)


def _scroll(page, cdp, pages: int | None, down: bool) -> tuple[int, float, int]:
    """Scroll the pane a page at a time, waiting for each window load; (max nodes, max heap MiB, max rows)."""
    nodes = heap = rows = 0
    i = 0
    while pages is None or i < pages:
        i += 1
        before = page.evaluate("() => { const v = document.querySelector('[data-log-viewer]')._lv;"
                               " return [v.first, v.next]; }")
        page.evaluate("(d) => { const p = document.querySelector('.lv-pane');"
                      " p.scrollTop = d ? p.scrollHeight : 0; p.dispatchEvent(new Event('scroll')); }", down)
        try:
            page.wait_for_function(
                "([f, n, d]) => { const v = document.querySelector('[data-log-viewer]')._lv;"
                " return !v.busy && (d ? v.next !== n : v.first !== f); }", arg=[before[0], before[1], down],
                timeout=15000)
        except Exception:
            break  # the end of the log (nothing more to load)
        if i % 10 == 0 or pages is None:
            n, h = _metrics(page, cdp)
            nodes, heap = max(nodes, n), max(heap, h)
            rows = max(rows, page.locator(".ll").count())
    n, h = _metrics(page, cdp)
    return max(nodes, n), max(heap, h), max(rows, page.locator(".ll").count())


def run(tmp: Path) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from devops.controller.projects import do_create_project
    from devops.logs import LogKey, get_log_store
    from devops.models import Pipeline, PipelineExecution

    user = get_user_model().objects.create_user("bench", password="bench-pw")
    project = do_create_project("bench", owner=user)
    pipeline = Pipeline.objects.create(project=project, repository_url="https://example.invalid/r.git")
    execution = PipelineExecution.objects.create(project=project, pipeline=pipeline, name=f"{pipeline.name}-1",
                                                 run=1, execution_state="Success")
    store = get_log_store()
    t0 = time.monotonic()
    typical = len(b"[%07d] \x1b[32mok\x1b[0m compiling module \x1b[1mmod_%d\x1b[0m ... done in 12ms\n" % (10**6, 10**6))
    needle = TOTAL // typical - 5_000   # a line near the end
    lines = _write_log(store, LogKey(execution.name, 1, 0), TOTAL, needle_line=needle)
    assert needle < lines, (needle, lines)
    _write_log(store, LogKey(execution.name, 2, 0), 1000 * 80, needle_line=None)
    size = store.size(LogKey(execution.name, 1, 0))
    print(f"log: {size / (1 << 20):.0f} MiB, {lines:,} lines (written in {time.monotonic() - t0:.0f}s)", flush=True)
    session = SessionStore()
    session.update({SESSION_KEY: str(user.pk), BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
                    HASH_SESSION_KEY: user.get_session_auth_hash()})
    session.save()

    port = free_port()
    daphne = subprocess.Popen([str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "devops.asgi:application"],
                              cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    view = f"/p/{project.id}/pipelines/{pipeline.name}/runs/1/logs/1.0/"
    small = f"/p/{project.id}/pipelines/{pipeline.name}/runs/1/logs/2.0/"
    raw = f"/api/v1/projects/{project.id}/executions/{execution.name}/stages/1/steps/0/log"
    raw_pages = os.environ.get("BENCH_UI_SCROLL_PAGES", "300")
    scroll_pages = None if raw_pages == "all" else int(raw_pages)
    try:
        wait_port(port)
        from playwright.sync_api import sync_playwright

        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            ctx = browser.new_context(base_url=base, viewport={"width": 1280, "height": 800})
            ctx.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session.session_key, "url": base}])
            page = ctx.new_page()
            page.goto("/static/web/logviewer.css")  # warm up: the connection, the static files

            fetch_js = ("async ([u, h]) => { const t = performance.now(); const r = await fetch(u, {headers: h});"
                        " const b = await r.arrayBuffer(); return [performance.now() - t, b.byteLength]; }")
            head = [page.evaluate(fetch_js, [raw, {"Range": "bytes=0-65535"}])[0] for _ in range(5)]
            first = []
            for _ in range(5):
                t = time.monotonic()
                page.goto(view, wait_until="commit")
                page.wait_for_selector('[id="s1.0-L1"]', state="attached")
                first.append((time.monotonic() - t) * 1000)
            b_first, s_first = statistics.median(head), statistics.median(first)
            print("\nlog viewer, 100 MiB log (ms, median)")
            print(f"  baseline: first 64 KiB of the raw log        {b_first:8.1f}")
            print(f"  time to first lines (page -> rows in DOM)    {s_first:8.1f}   ({s_first / b_first:.1f}x baseline)")

            whole = []
            for _ in range(2):
                ms, got = page.evaluate(fetch_js, [raw, {}])
                assert got == size, (got, size)
                whole.append(ms)
            found = []
            for _ in range(3):
                page.goto(view)
                page.wait_for_selector('[id="s1.0-L1"]', state="attached")
                t = time.monotonic()
                page.get_by_label("Search").fill("the-needle-we-search")
                page.get_by_label("Search").press("Enter")
                page.wait_for_selector(f'[id="s1.0-L{needle}"].hit', state="visible", timeout=60000)
                found.append((time.monotonic() - t) * 1000)
            b_whole, s_found = statistics.median(whole), statistics.median(found)
            print(f"  baseline: download the whole raw log         {b_whole:8.1f}")
            print(f"  time to a search result (line {needle:,})  {s_found:8.1f}   "
                  f"({s_found / b_whole:.2f}x baseline)")

            cdp = ctx.new_cdp_session(page)
            cdp.send("Performance.enable")
            page.goto(small)
            page.wait_for_selector('[id="s2.0-L1"]', state="attached")
            small_nodes, small_heap = _metrics(page, cdp)
            page.goto(view)
            page.wait_for_selector('[id="s1.0-L1"]', state="attached")
            t = time.monotonic()
            n1, h1, r1 = _scroll(page, cdp, scroll_pages, down=True)
            page.get_by_role("button", name="Bottom").click()
            page.wait_for_selector(f'[id="s1.0-L{lines}"]', state="attached", timeout=60000)
            n2, h2, r2 = _scroll(page, cdp, scroll_pages, down=False)
            took = time.monotonic() - t
            nodes, heap, rows = max(n1, n2), max(h1, h2), max(r1, r2)
            what = "the whole log, down then up" if scroll_pages is None else \
                f"{scroll_pages} pages down from the top, Bottom, {scroll_pages} pages up"
            print(f"\nscrolling ({what}; {took:.0f}s)")
            print(f"  baseline: a 1,000-line log     DOM nodes {small_nodes:7,}   JS heap {small_heap:6.1f} MiB")
            print(f"  100 MiB log, max while scrolling DOM nodes {nodes:7,} ({nodes / small_nodes:.1f}x)   "
                  f"JS heap {heap:6.1f} MiB ({heap / small_heap:.1f}x)   line rows at most {rows:,}", flush=True)
            browser.close()
    finally:
        daphne.terminate()
        daphne.wait(10)


def main() -> None:
    if not os.path.exists(CHROMIUM):
        print(f"bench ui needs Debian's chromium at {CHROMIUM} (apt-get install chromium)", file=sys.stderr)
        raise SystemExit(2)
    with tempfile.TemporaryDirectory(prefix="slipway-bench-ui-") as tmp:
        env = {**os.environ, "SLIPWAY_DATA_DIR": tmp, "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3",
               "DJANGO_SETTINGS_MODULE": "devops.settings", "SLIPWAY_LOG_LEVEL": "WARNING",
               "SLIPWAY_LOG_STORE": f"file://{tmp}/logs"}
        env.pop("REDIS_URL", None)
        subprocess.run([sys.executable, "-m", "tests.bench._ui_logs", "--run", tmp], cwd=ROOT, env=env, check=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--run"]:
        run(Path(sys.argv[2]))
    else:
        main()
