"""One execution: `/p/<project>/pipelines/<pipeline>/runs/<n>/` and its config, Rerun, Stop.

The page and the status push (devops/web/consumers.py) render the same
partial, `web/run.html#run-live`, from the same context (`run_context`).
"""
from __future__ import annotations

import difflib
import functools

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from devops.controller.actions import ActionError, do_rerun, do_stop, read_source
from devops.models import ExecutionState, PipelineExecution
from devops.web.access import project_for


def _execution(project, pipeline: str, n: int) -> PipelineExecution:
    execution = (
        PipelineExecution.objects.select_related("pipeline", "project", "trigger_user")
        .filter(project=project, pipeline__name=pipeline, run=n).first()
    )
    if execution is None:
        raise Http404("No such run.")
    return execution


def duration(started, ended) -> str:
    """"1h 2m", "3m 4s", "5s"; "" before the start. A running one counts to now."""
    if started is None:
        return ""
    seconds = max(0, int(((ended or timezone.now()) - started).total_seconds()))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h {m}m"
    return f"{m}m {s}s" if m else f"{s}s"


def _kwargs(execution: PipelineExecution) -> dict:
    return {"project": execution.project_id, "pipeline": execution.pipeline.name, "n": execution.run}


@functools.cache
def _has_viewer() -> bool:
    """Whether the log viewer's page (`web:step-log`) is installed (asked once: a miss raises, slowly)."""
    try:
        reverse("web:step-log", kwargs={"project": "p", "pipeline": "p", "n": 1, "stage": 0, "step": 0})
    except NoReverseMatch:
        return False
    return True


def step_log_url(execution: PipelineExecution, stage: int, step: int) -> tuple[str, bool]:
    """(URL, is the web viewer): the log viewer page (`web:step-log`) when it exists, else the raw log."""
    return _step_log_urls(execution)(stage, step)


def _step_log_urls(execution: PipelineExecution):
    """`(stage, step) -> (URL, is the web viewer)` for one execution, reversing once, not once a step
    (a push renders every step of the run; `reverse` is most of that context's cost)."""
    if not _has_viewer():
        base = reverse("step-log", kwargs={"project": execution.project_id, "name": execution.name,
                                           "stage": 1000000001, "step": 1000000002})
        viewer = False
    else:
        base = reverse("web:step-log", kwargs={**_kwargs(execution), "stage": 1000000001, "step": 1000000002})
        viewer = True
    return lambda stage, step: (
        base.replace("1000000001", str(int(stage)), 1).replace("1000000002", str(int(step)), 1), viewer)


def default_step(steps) -> tuple[int, int] | None:
    """The step whose log shows first: the running one, else the failed one, else the last that started."""
    for wanted in (ExecutionState.BUILDING, ExecutionState.FAILED):
        for s in steps:
            if s.state == wanted:
                return s.stage_index, s.index
    started = [s for s in steps if s.started is not None]
    return (started[-1].stage_index, started[-1].index) if started else None


def run_context(execution: PipelineExecution, can_write: bool, selected: tuple[int, int] | None = None,
                oob: bool = False) -> dict:
    """Everything `web/run.html` and its partials show; `oob` marks a pushed render.

    A step's row holds plain values only: `run_frame` compares them to what a
    page already shows. Pushed renders mark no step selected (the page's own
    script does: the selection is the page's), and carry the run's default
    step in the header (`data-default`), which a page that has not been told
    otherwise follows."""
    steps = list(execution.steps.only("execution_id", "stage_index", "index", "name", "state", "started", "ended", "message"))
    default = default_step(steps)
    if selected is None or not any((s.stage_index, s.index) == selected for s in steps):
        selected = default
    if oob:
        selected = None
    page = reverse("web:run", kwargs=_kwargs(execution))
    urls = _step_log_urls(execution)
    columns = []
    for stage in execution.stages.only("execution_id", "index", "name", "state", "started", "ended"):
        rows = []
        for s in steps:
            if s.stage_index != stage.index:
                continue
            log_url, viewer = urls(s.stage_index, s.index)
            rows.append({
                "stage_index": s.stage_index, "index": s.index, "state": s.state,
                "label": s.name or f"step {s.index + 1}", "message": s.message,
                "duration": duration(s.started, s.ended), "running": s.state == ExecutionState.BUILDING,
                "since": int(s.started.timestamp()) if s.started else "",
                "log_url": log_url, "viewer": viewer, "selected": (s.stage_index, s.index) == selected,
                "href": f"{page}?stage={s.stage_index}&step={s.index}#log-pane",
            })
        columns.append({"stage": stage, "steps": rows, "duration": duration(stage.started, stage.ended)})
    selected_step = next((r for c in columns for r in c["steps"] if r["selected"]), None)
    return {
        "execution": execution, "pipeline": execution.pipeline, "project_id": execution.project_id,
        "pipeline_label": execution.pipeline.display_name or execution.pipeline.name,
        "can_write": can_write, "finished": execution.is_finished, "oob": oob,
        "duration": duration(execution.started, execution.ended),
        "running": execution.execution_state == ExecutionState.BUILDING,
        "columns": columns, "selected": selected_step, "page_url": page,
        "default_step": f"{default[0]}.{default[1]}" if default else "",
        "rerun_url": reverse("web:run-rerun", kwargs=_kwargs(execution)),
        "stop_url": reverse("web:run-stop", kwargs=_kwargs(execution)),
        "config_url": reverse("web:run-config", kwargs=_kwargs(execution)),
        "logs_url": reverse("execution-logs", kwargs={"project": execution.project_id, "name": execution.name}),
        "ws_url": f"/ws/v1/status/{execution.project_id}/executions/{execution.name}",
    }


def run_frame(ctx: dict, shown: dict) -> str:
    """The frame a status socket pushes for `ctx` (`run_context(..., oob=True)`), given what it
    pushed before (`shown`, the socket's own dict, updated here).

    The first frame is the whole run (`run-live`); after it, only the header,
    the stages and the steps whose content changed, each as its own
    out-of-band element: one step going Building costs rendering, sending and
    swapping that step (a few hundred bytes), not the whole run (tens of KiB
    for 50 steps) — that swap was most of a change's time in the browser.
    Steps are compared by their row's plain values, so unchanged ones are not
    even rendered. "" when nothing changed."""
    def step_key(s: dict) -> tuple:
        return tuple(sorted(s.items()))

    layout = tuple((c["stage"].index, tuple((s["stage_index"], s["index"]) for s in c["steps"]))
                   for c in ctx["columns"])
    header = render_to_string("web/run.html#run-header", {**ctx, "part_oob": True})

    def remember_stage(col: dict) -> None:
        shown[f"stage-{col['stage'].index}"] = (col["stage"].name, col["stage"].state)
        for s in col["steps"]:
            shown[f"step-{s['stage_index']}-{s['index']}"] = step_key(s)

    if shown.get("layout") != layout:   # the first frame (a run's steps never change after it)
        shown.clear()
        shown.update(layout=layout, header=header)
        for col in ctx["columns"]:
            remember_stage(col)
        return render_to_string("web/run.html#run-live", ctx)
    parts = []
    if header != shown["header"]:
        shown["header"] = header
        parts.append(header)
    for col in ctx["columns"]:
        if shown.get(f"stage-{col['stage'].index}") != (col["stage"].name, col["stage"].state):
            remember_stage(col)
            parts.append(render_to_string("web/run.html#run-stage", {**ctx, "col": col, "part_oob": True}))
            continue
        for s in col["steps"]:
            name = f"step-{s['stage_index']}-{s['index']}"
            if shown.get(name) != (key := step_key(s)):
                shown[name] = key
                parts.append(render_to_string("web/run.html#run-step", {**ctx, "s": s, "step_oob": True}))
    return "".join(parts)


def _selected(request: HttpRequest) -> tuple[int, int] | None:
    try:
        return int(request.GET["stage"]), int(request.GET["step"])
    except (KeyError, ValueError):
        return None


@login_required
def run_page(request: HttpRequest, project: str, pipeline: str, n: int) -> TemplateResponse:
    """The run, with its selected step's log viewer inline: the first lines come in this
    response (no request after the page's load; README "Log viewer")."""
    from devops.web.views_logs import viewer_html

    proj = project_for(request, project)
    execution = _execution(proj, pipeline, n)
    chosen = _selected(request)
    ctx = run_context(execution, proj.can_write, chosen)
    ctx["auto_select"] = chosen is None
    step = ctx["selected"]
    if step is not None and step["viewer"]:
        ctx["log_html"] = viewer_html(request, proj, execution, step["stage_index"], step["index"])
    return TemplateResponse(request, "web/run.html", ctx)


def config_text(execution: PipelineExecution) -> str:
    """The YAML the run used: as written (file or temporary config), else its normalised form."""
    if execution.config_text:
        return execution.config_text
    from devops.pipeline.config import PipelineConfig
    from devops.pipeline.dump import dump

    return dump(PipelineConfig.from_json(execution.config))


@login_required
def run_config(request: HttpRequest, project: str, pipeline: str, n: int) -> TemplateResponse:
    """The exact config of the run and, when it differs, a diff against the branch head's file."""
    proj = project_for(request, project)
    execution = _execution(proj, pipeline, n)
    text, head_error, diff = config_text(execution), "", []
    try:
        head = read_source(execution.pipeline, branch=execution.branch or None).config_text
    except ActionError as exc:
        head_error = str(exc)
    else:
        diff = list(difflib.unified_diff(
            text.splitlines(), head.splitlines(), f"run {execution.run}", f"{execution.branch} (head)",
            lineterm=""))
    return TemplateResponse(request, "web/run_config.html", {
        **run_context(execution, proj.can_write), "config_text": text, "head_error": head_error,
        "diff": diff,
    })


@login_required
@require_POST
def run_rerun(request: HttpRequest, project: str, pipeline: str, n: int) -> HttpResponse:
    proj = project_for(request, project, "write")
    execution = _execution(proj, pipeline, n)
    try:
        new = do_rerun(execution, request.user)
    except ActionError as exc:
        return HttpResponse(str(exc), status=409, content_type="text/plain")
    url = reverse("web:run", kwargs=_kwargs(new))
    return HttpResponseClientRedirect(url) if request.htmx else HttpResponseRedirect(url)


@login_required
@require_POST
def run_stop(request: HttpRequest, project: str, pipeline: str, n: int) -> HttpResponse:
    """Stop; htmx gets 204 (the status push redraws the page), a plain form a redirect back."""
    proj = project_for(request, project, "write")
    execution = _execution(proj, pipeline, n)
    if not do_stop(execution, request.user):
        return HttpResponse(f"Run {execution.run} has already finished.", status=409, content_type="text/plain")
    if request.htmx:
        return HttpResponse(status=204)
    return HttpResponseRedirect(reverse("web:run", kwargs=_kwargs(execution)))
