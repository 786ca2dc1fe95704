"""The log viewer: one step's log in the browser (README "Log viewer").

`step_log` is a full page for a normal request and only the viewer fragment
(`web/log.html#viewer`) for an htmx request, which the execution page swaps
into its `<section id="log-pane">`. `step_log_lines` serves further pages of
rendered rows (`web/log.html#rows`) to static/web/logviewer.js, with the
page's facts in `X-Log-*` headers. Rendering (ANSI -> escaped HTML,
sections) is devops.logs.viewer's; search is the API's
(`step-log-search`); live bytes come from the log WebSocket.
"""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.safestring import mark_safe

from devops.logs import get_log_store
from devops.logs.base import LogKey
from devops.logs.viewer import FIRST_PAGE, MAX_PAGE, PAGE, render_page, rows_html, tail_start
from devops.web.access import project_for


def _step(request: HttpRequest, project: str, pipeline: str, n: int, stage: int, step: int):
    from devops.models import PipelineExecution, StepStatus

    p = project_for(request, project, "read")
    execution = get_object_or_404(
        PipelineExecution.objects.select_related("pipeline"), project=p, pipeline__name=pipeline, run=n)
    status = StepStatus.objects.filter(execution=execution, stage_index=stage, index=step).first()
    return p, execution, status, LogKey(execution.name, stage, step)


def _int(request: HttpRequest, name: str, default: int | None) -> int | None:
    raw = request.GET.get(name)
    if raw in (None, ""):
        return default
    try:
        return max(0, int(raw))
    except ValueError:
        raise Http404(f"bad {name}") from None


def _context(request, p, execution, status, key: LogKey, page) -> dict:
    api = f"/api/v1/projects/{p.id}/executions/{execution.name}/stages/{key.stage}/steps/{key.step}/log"
    kwargs = {"project": p.id, "pipeline": execution.pipeline.name, "n": execution.run,
              "stage": key.stage, "step": key.step}
    return {
        "project": p,
        "execution": execution,
        "step_status": status,
        "stage": key.stage,
        "step": key.step,
        "page": page,
        # Safe: escaped by devops.logs.ansi, the rest ours (see rows_html).
        "rows_html": mark_safe(rows_html(page.rows, key.stage, key.step)),
        "anchor": f"s{key.stage}.{key.step}-L",
        "urls": {
            "page": reverse("web:step-log", kwargs=kwargs),
            "lines": reverse("web:step-log-lines", kwargs=kwargs),
            "raw": api,
            "search": api + "/search",
            "ws": f"/ws/v1/projects/{p.id}/executions/{execution.name}/log?stage={key.stage}&step={key.step}",
        },
        "step_started_ms": int(status.started.timestamp() * 1000) if status and status.started else None,
        "running": not page.complete,
        "download_name": f"{execution.name}-{key.stage}-{key.step}.log",
    }


def _first_page(key: LogKey, start: int | None):
    """The page a viewer opens with: the top (or `start`), or the tail of a running step."""
    store = get_log_store()
    if start is None:
        start = 1 if store.is_complete(key) else tail_start(store, key, FIRST_PAGE)
    return render_page(store, key, max(start, 1), FIRST_PAGE)


def viewer_html(request: HttpRequest, p, execution, stage: int, step: int) -> str:
    """The viewer fragment (`web/log.html#viewer`) with its first page, for a page that shows it
    inline (the run page: the selected step's lines arrive with the page itself). `p` is the
    project `project_for` returned for this request (membership already checked)."""
    from devops.models import StepStatus

    status = StepStatus.objects.filter(execution=execution, stage_index=stage, index=step).first()
    key = LogKey(execution.name, stage, step)
    ctx = _context(request, p, execution, status, key, _first_page(key, None))
    return render_to_string("web/log.html#viewer", ctx, request)


@login_required
def step_log(request: HttpRequest, project: str, pipeline: str, n: int, stage: int, step: int):
    """The viewer, opened at the top (or at `?from=LINE`); a running step opens
    at its tail and follows. A line anchor in the URL's fragment is the
    script's: the server never sees it."""
    p, execution, status, key = _step(request, project, pipeline, n, stage, step)
    page = _first_page(key, _int(request, "from", None))
    ctx = _context(request, p, execution, status, key, page)
    template = "web/log.html#viewer" if request.htmx else "web/log.html"
    return TemplateResponse(request, template, ctx)


@login_required
def step_log_lines(request: HttpRequest, project: str, pipeline: str, n: int, stage: int, step: int):
    """Rows for the script: `?from=N[&sgr=TOKEN]` (N onwards), `?around=N`
    (a page centred on N), `?end=1` (the last page); `limit` at most MAX_PAGE.
    Headers: X-Log-First, X-Log-Next, X-Log-More, X-Log-Complete, X-Log-Size, X-Log-Sgr."""
    p, execution, status, key = _step(request, project, pipeline, n, stage, step)
    store = get_log_store()
    limit = min(_int(request, "limit", PAGE) or PAGE, MAX_PAGE)
    if request.GET.get("end"):
        start = tail_start(store, key, limit)
    elif (around := _int(request, "around", None)) is not None:
        start = max(1, around - limit // 2)
    else:
        start = max(1, _int(request, "from", 1))
    sgr = request.GET.get("sgr", "")[:40]
    page = render_page(store, key, start, limit, sgr)
    resp = TemplateResponse(request, "web/log.html#rows", _context(request, p, execution, status, key, page))
    resp["X-Log-First"] = str(page.first)
    resp["X-Log-Next"] = str(page.next)
    resp["X-Log-More"] = "true" if page.more else "false"
    resp["X-Log-Complete"] = "true" if page.complete else "false"
    resp["X-Log-Size"] = str(page.size)
    resp["X-Log-Sgr"] = page.sgr
    resp["Cache-Control"] = "no-store"
    return resp
