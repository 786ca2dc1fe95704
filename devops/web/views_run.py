"""One execution: `/p/<project>/pipelines/<pipeline>/runs/<n>/` and its config, Rerun, Stop.

The page and the status push (devops/web/consumers.py) render the same
partial, `web/run.html#run-live`, from the same context (`run_context`).
"""
from __future__ import annotations

import difflib
import functools

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
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
    if _has_viewer():
        return reverse("web:step-log", kwargs={**_kwargs(execution), "stage": stage, "step": step}), True
    return reverse("step-log", kwargs={"project": execution.project_id, "name": execution.name,
                                       "stage": stage, "step": step}), False


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
    """Everything `web/run.html` and its partials show; `oob` marks a pushed render."""
    steps = list(execution.steps.all())
    if selected is None or not any((s.stage_index, s.index) == selected for s in steps):
        selected = default_step(steps)
    page = reverse("web:run", kwargs=_kwargs(execution))
    columns = []
    for stage in execution.stages.all():
        rows = []
        for s in steps:
            if s.stage_index != stage.index:
                continue
            log_url, viewer = step_log_url(execution, s.stage_index, s.index)
            rows.append({
                "row": s, "state": s.state, "label": s.name or f"step {s.index + 1}",
                "duration": duration(s.started, s.ended), "running": s.state == ExecutionState.BUILDING,
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
        "rerun_url": reverse("web:run-rerun", kwargs=_kwargs(execution)),
        "stop_url": reverse("web:run-stop", kwargs=_kwargs(execution)),
        "config_url": reverse("web:run-config", kwargs=_kwargs(execution)),
        "logs_url": reverse("execution-logs", kwargs={"project": execution.project_id, "name": execution.name}),
        "ws_url": f"/ws/v1/status/{execution.project_id}/executions/{execution.name}",
    }


def _selected(request: HttpRequest) -> tuple[int, int] | None:
    try:
        return int(request.GET["stage"]), int(request.GET["step"])
    except (KeyError, ValueError):
        return None


@login_required
def run_page(request: HttpRequest, project: str, pipeline: str, n: int) -> TemplateResponse:
    proj = project_for(request, project)
    execution = _execution(proj, pipeline, n)
    return TemplateResponse(request, "web/run.html",
                            run_context(execution, proj.can_write, _selected(request)))


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
