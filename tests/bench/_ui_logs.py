"""The log viewer part of `./slipway bench ui` (README "Benchmarks"; bench_ui.py runs it).

Log viewer on a 100 MiB, ~1.5-million-line step log (ANSI colours on every
line, written in 64 KiB pieces as a runner does), in Debian's Chromium
(Playwright, /usr/bin/chromium) against a real daphne:

1. Time to first lines, timed in the page from the navigation's start (an
   init script: no Playwright round trip counted): the viewer page, and the
   run page with the step's log inline, to the first row in the DOM and to
   the frame that paints it; a click on another step of the run page to its
   first row; a line written to a running step's log to that line in the DOM
   (p50/p95 of 30), beside its log WebSocket frame's arrival. Medians of 9.
   Baselines, same run: a navigation to a small static file of the same
   server (the browser's and daphne's own cost of a page), and the page
   fetching the first 64 KiB of the raw log (a Range request: the bytes
   alone, unrendered).
2. Time to a search result: type a string that is only on a line near the
   end, press Enter -> that line highlighted in view (median of 3). Baseline:
   the browser downloading the whole raw log (what a client-side search would
   have to fetch first).
3. DOM node count and the tab's JS heap (performance.memory every 10 pages,
   CDP Runtime.getHeapUsage every 100) while scrolling the whole log from the
   top to its last line, a page of 500 lines at a time (the loop runs in the
   page), then Bottom and BENCH_UI_UP_PAGES (default 100) pages up.
   Baseline: the same page on a 1,000-line log.

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


def _pct(xs: list[float]) -> tuple[float, float]:
    xs = sorted(xs)
    return xs[len(xs) // 2], xs[min(len(xs) - 1, int(0.95 * len(xs)))]


# Installed before every document: when the first row of the watched step enters the DOM,
# and the first frame after it (the row painted), in ms since the navigation started.
FIRST_ROWS = """(() => {
  const mark = () => {
    // the watched row; or, on the baseline's navigation to a static file, the text Chromium shows
    const el = location.pathname.startsWith('/static/') ? document.querySelector('body > pre')
                                                        : document.getElementById('s1.0-L1');
    if (window.__rows || !el) return false;
    window.__rows = performance.now();
    requestAnimationFrame(() => setTimeout(() => { window.__painted = performance.now(); }, 0));
    return true;
  };
  new MutationObserver(mark).observe(document, {childList: true, subtree: true});
})();"""

# Scroll the pane down (or up) page by page inside the page: no round trip to Playwright per
# page. Returns the pages loaded, the time, and samples (DOM nodes, line rows, JS heap).
SCROLL = """async ([down, pages, every]) => {
  const v = document.querySelector('[data-log-viewer]')._lv, p = v.pane;
  const idle = () => new Promise(r => { const f = () => v.busy ? setTimeout(f, 2) : r(); f(); });
  const samples = [];
  let n = 0;
  const t0 = performance.now();
  while (n < pages) {
    const before = down ? v.next : v.first;
    p.scrollTop = down ? p.scrollHeight : 0;
    p.dispatchEvent(new Event('scroll'));
    await idle();
    if ((down ? v.next : v.first) === before) break;   // the end (or the top) of the log
    n++;
    if (n % every === 0)
      samples.push([document.getElementsByTagName('*').length, v.box.children.length,
                    performance.memory.usedJSHeapSize]);
  }
  return {pages: n, ms: performance.now() - t0, samples, first: v.first, next: v.next, more: v.more};
}"""


def _heap(cdp) -> float:
    """The tab's JS heap in use (CDP Runtime.getHeapUsage), MiB."""
    return cdp.send("Runtime.getHeapUsage")["usedSize"] / (1 << 20)


def _nodes(page) -> int:
    return page.evaluate("() => document.getElementsByTagName('*').length")


def _scroll(page, cdp, down: bool, pages: int) -> dict:
    """Scroll `pages` pages (down: until the log's end if it comes first), 100 at a time, taking
    the CDP heap between chunks; maxima of DOM nodes, line rows and heap."""
    out = {"pages": 0, "ms": 0.0, "nodes": 0, "rows": 0, "heap": 0.0, "samples": 0}
    while out["pages"] < pages:
        r = page.evaluate(SCROLL, [down, min(100, pages - out["pages"]), 10])
        out["pages"] += r["pages"]
        out["ms"] += r["ms"]
        for nodes, rows, heap in r["samples"]:
            out.update(nodes=max(out["nodes"], nodes), rows=max(out["rows"], rows),
                       heap=max(out["heap"], heap / (1 << 20)))
        out["samples"] += len(r["samples"]) + 1
        out["heap"] = max(out["heap"], _heap(cdp))
        out["nodes"] = max(out["nodes"], _nodes(page))
        out["first"], out["next"], out["more"] = r["first"], r["next"], r["more"]
        if r["pages"] < min(100, pages):
            break
    return out


def _first_lines(page, url: str, row: str, n: int) -> tuple[float, float]:
    """Medians over `n` loads: (navigation -> the row in the DOM, -> the first frame after it)."""
    rows, painted = [], []
    for _ in range(n):
        page.goto(url)
        page.wait_for_function("window.__painted")
        got = page.evaluate("() => [window.__rows, window.__painted]")
        rows.append(got[0])
        painted.append(got[1])
        assert row is None or page.locator(f'[id="{row}"]').count() == 1
    return statistics.median(rows), statistics.median(painted)


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
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    from devops.controller.projects import do_create_project
    from devops.logs import LogKey, get_log_store
    from devops.models import Pipeline, PipelineExecution, StageStatus, StepStatus

    user = get_user_model().objects.create_user("bench", password="bench-pw")
    project = do_create_project("bench", owner=user)
    pipeline = Pipeline.objects.create(project=project, repository_url="https://example.invalid/r.git")
    execution = PipelineExecution.objects.create(project=project, pipeline=pipeline, name=f"{pipeline.name}-1",
                                                 run=1, execution_state="Failed")
    now = timezone.now()
    # The failed step is the run page's default.
    for i, (name, state) in enumerate([("Clone", "Success"), ("Build", "Failed"), ("Report", "Success")]):
        StageStatus.objects.create(execution=execution, index=i, name=name, state=state, started=now)
        StepStatus.objects.create(execution=execution, stage_index=i, index=0, name=name.lower(), state=state,
                                  started=now, ended=now)
    running = PipelineExecution.objects.create(project=project, pipeline=pipeline, name=f"{pipeline.name}-2",
                                               run=2, execution_state="Building", started=now)
    StageStatus.objects.create(execution=running, index=1, name="Live", state="Building", started=now)
    StepStatus.objects.create(execution=running, stage_index=1, index=0, name="live", state="Building", started=now)
    store = get_log_store()
    t0 = time.monotonic()
    typical = len(b"[%07d] \x1b[32mok\x1b[0m compiling module \x1b[1mmod_%d\x1b[0m ... done in 12ms\n" % (10**6, 10**6))
    needle = TOTAL // typical - 5_000   # a line near the end
    lines = _write_log(store, LogKey(execution.name, 1, 0), TOTAL, needle_line=needle)
    assert needle < lines, (needle, lines)
    _write_log(store, LogKey(execution.name, 2, 0), 1000 * 80, needle_line=None)
    live = store.writer(LogKey(running.name, 1, 0))   # a running step: its log stays open
    live.write(b"started\n")
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
    run_page = f"/p/{project.id}/pipelines/{pipeline.name}/runs/1/"
    view = f"{run_page}logs/1.0/"
    small = f"{run_page}logs/2.0/"
    raw = f"/api/v1/projects/{project.id}/executions/{execution.name}/stages/1/steps/0/log"
    up_pages = int(os.environ.get("BENCH_UI_UP_PAGES", "100"))
    try:
        wait_port(port)
        from playwright.sync_api import sync_playwright

        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, "--enable-precise-memory-info"])
            ctx = browser.new_context(base_url=base, viewport={"width": 1280, "height": 800})
            ctx.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session.session_key, "url": base}])
            ctx.add_init_script(FIRST_ROWS)
            page = ctx.new_page()
            page.goto("/static/web/logviewer.css")  # warm up: the connection, the static files
            page.goto(view)

            fetch_js = ("async ([u, h]) => { const t = performance.now(); const r = await fetch(u, {headers: h});"
                        " const b = await r.arrayBuffer(); return [performance.now() - t, b.byteLength]; }")
            head = statistics.median([page.evaluate(fetch_js, [raw, {"Range": "bytes=0-65535"}])[0]
                                      for _ in range(9)])
            n_rows, n_paint = _first_lines(page, "/static/web/run.css", None, 9)
            v_rows, v_paint = _first_lines(page, view, "s1.0-L1", 9)
            r_rows, r_paint = _first_lines(page, run_page, "s1.0-L1", 9)   # the failed step: selected
            clicks = []
            for _ in range(9):
                page.goto(run_page)
                page.wait_for_function("window.__painted && window.htmx && document.body.dataset.live === 'open'")
                clicks.append(page.evaluate("""() => new Promise(done => {
                  const t = performance.now();
                  new MutationObserver((_, mo) => { if (document.getElementById('s2.0-L1')) {
                    mo.disconnect(); done(performance.now() - t); } }).observe(document.body, {childList: true, subtree: true});
                  document.getElementById('step-2-0').click(); })"""))
            click = statistics.median(clicks)
            print("\nlog viewer, 100 MiB log (ms, median of 9, timed in the page: from the navigation's start)")
            print(f"  baseline: fetch() of the first 64 KiB of the raw log (Range)      {head:8.1f}")
            print(f"  baseline: navigation to a static file (run.css): its text in the DOM / painted"
                  f"{n_rows:6.1f} / {n_paint:6.1f}")
            print(f"  viewer page: first lines in the DOM / painted                     {v_rows:8.1f} / {v_paint:6.1f}"
                  f"   ({v_rows / n_rows:.1f}x / {v_paint / n_paint:.1f}x the navigation baseline)")
            print(f"  run page, the failed step's log inline: in the DOM / painted      {r_rows:8.1f} / {r_paint:6.1f}"
                  f"   ({r_rows / n_rows:.1f}x / {r_paint / n_paint:.1f}x the navigation baseline)")
            print(f"  run page, click another step -> its first lines in the DOM        {click:8.1f}"
                  f"   ({click / head:.1f}x baseline)")

            # A running step: a line written to its log -> shown in the viewer that follows it.
            page.goto(f"/p/{project.id}/pipelines/{pipeline.name}/runs/2/logs/1.0/")
            page.wait_for_function("(() => { const v = document.querySelector('[data-log-viewer]')._lv;"
                                   " return v && v.ws && v.ws.readyState === 1; })()")
            page.evaluate("""() => { window.__live = {}; window.__frames = [];
              const v = document.querySelector('[data-log-viewer]')._lv;
              v.ws.addEventListener('message', () => window.__frames.push(performance.timeOrigin + performance.now()));
              new MutationObserver(() => document.querySelectorAll('.ll .lx').forEach(el => {
                const m = /^live line (\\d+)$/.exec(el.textContent);
                if (m && !window.__live[m[1]]) window.__live[m[1]] = performance.timeOrigin + performance.now();
              })).observe(v.box, {childList: true}); }""")
            shown, framed = [], []
            for i in range(30):
                t = time.time()
                live.write(b"live line %d\n" % i)
                page.wait_for_function(f"window.__live[{i}]", timeout=10_000)
                at, frames = page.evaluate(f"[window.__live[{i}], window.__frames]")
                shown.append(at - t * 1000)
                framed.append(min(f for f in frames if f >= t * 1000) - t * 1000)
                time.sleep(0.05)
            (f50, f95), (l50, l95) = _pct(framed), _pct(shown)
            print(f"  running step, a line written -> its log frame in the page p50/p95 {f50:8.1f} / {f95:6.1f}")
            print(f"  running step, a line written -> the line in the DOM, p50/p95      {l50:8.1f} / {l95:6.1f}"
                  f"   (p95 {l95 / head:.1f}x baseline)")

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
            print(f"  baseline: download the whole raw log                              {b_whole:8.1f}")
            print(f"  time to a search result (line {needle:,}: Enter -> highlighted) {s_found:8.1f}   "
                  f"({s_found / b_whole:.2f}x baseline)", flush=True)

            cdp = ctx.new_cdp_session(page)
            page.goto(small)
            page.wait_for_selector('[id="s2.0-L1"]', state="attached")
            small_nodes, small_heap = _nodes(page), _heap(cdp)
            page.goto(view)
            page.wait_for_selector('[id="s1.0-L1"]', state="attached")
            t = time.monotonic()
            down = _scroll(page, cdp, True, 10**6)                     # top -> the end, page by page
            assert not down["more"] and down["next"] == lines + 1, down
            page.get_by_role("button", name="Top").click()
            page.wait_for_selector('[id="s1.0-L1"]', state="attached")
            page.get_by_role("button", name="Bottom").click()
            page.wait_for_selector(f'[id="s1.0-L{lines}"]', state="attached", timeout=60000)
            up = _scroll(page, cdp, False, up_pages)
            took = time.monotonic() - t
            nodes, heap, rows = (max(down[k], up[k]) for k in ("nodes", "heap", "rows"))
            pages = lines / 500
            print(f"\nscrolling: the whole log top to bottom (all {lines:,} lines loaded, {pages:,.0f} pages of 500, "
                  f"in {down['pages']:,} scroll steps, {down['ms'] / 1000:.0f} s: {down['ms'] / pages:.0f} ms a page), "
                  f"Bottom, {up['pages']} steps up ({took:.0f} s in all; {down['samples'] + up['samples']} samples)")
            print(f"  baseline: a 1,000-line log       DOM nodes {small_nodes:7,}   JS heap {small_heap:6.1f} MiB")
            print(f"  100 MiB log, max while scrolling DOM nodes {nodes:7,} ({nodes / small_nodes:.1f}x)   "
                  f"JS heap {heap:6.1f} MiB ({heap / small_heap:.1f}x)   line rows at most {rows:,}", flush=True)
            browser.close()
    finally:
        live.close()
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
