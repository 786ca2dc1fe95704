"""Pages: projects, a project's pipelines, adding a pipeline, one pipeline (runs, spec, Run, delete).

Small function views returning TemplateResponse (STYLE.md "Web"). Each page is
one template with named partials (`{% partialdef %}`) that the htmx swap and
the Channels push reuse. Membership: `devops.web.access.project_for` (non-members
404, read-only members no writes). State changes: the `do_*` actions the API uses.
"""
from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import IntegrityError
from django.db.models import Count, OuterRef, Subquery
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from devops.api.permissions import projects_of
from devops.api.viewsets import Conflict, refuse_while_running
from devops.controller.actions import ActionError, PipelineFileInvalid, do_run
from devops.models import ExecutionState, Pipeline, PipelineExecution
from devops.web.access import project_for
from devops.web.forms import PipelineForm, RunForm

RUNS_PER_PAGE = 25
ACTIVE = sorted(ExecutionState.active())


def project_rows(user):
    """The rows of the projects page (`web/projects.html#project-row`, context `p`): the projects
    `user` may read, with n_pipelines, n_active, last_state / last_pipeline / last_run. One query
    whatever the history; filter it (`.filter(pk=...)`) to re-render one row for a live push."""
    # The last run is the newest of the pipelines' own last runs (Pipeline.last_execution_id,
    # kept by do_run): a walk of as many rows as the project has pipelines, by the unique name
    # index, where "the project's runs by -created" sorted its whole history (13x at 10,000 runs).
    lasts = Pipeline.objects.filter(project=OuterRef(OuterRef("pk"))).values("last_execution_id")
    last = PipelineExecution.objects.filter(name__in=lasts).order_by("-created", "-pk")
    active = (PipelineExecution.objects.filter(project=OuterRef("pk"), execution_state__in=ACTIVE)
              .order_by().values("project").annotate(n=Count("pk")).values("n"))
    return (projects_of(user).order_by("name")
            .annotate(n_pipelines=Count("pipelines", distinct=True),
                      n_active=Subquery(active),
                      last_state=Subquery(last.values("execution_state")[:1]),
                      last_pipeline=Subquery(last.values("pipeline__name")[:1]),
                      last_run=Subquery(last.values("run")[:1])))


@login_required
def projects(request: HttpRequest) -> TemplateResponse:
    """Your projects: pipelines, runs now active, the last result."""
    return TemplateResponse(request, "web/projects.html", {"projects": project_rows(request.user)})


def _last_runs(pipelines: list[Pipeline]) -> dict[str, PipelineExecution]:
    """Each pipeline's last execution by name, in one query (Pipeline.last_execution_id)."""
    names = [p.last_execution_id for p in pipelines if p.last_execution_id]
    rows = PipelineExecution.objects.filter(name__in=names).only(
        "name", "run", "execution_state", "branch", "created", "started", "ended", "pipeline_id")
    return {e.name: e for e in rows}


def pipeline_rows(project, names: list[str] | None = None) -> list[Pipeline]:
    """The rows of the pipelines page (`web/project.html#pipeline-row`, context `project`, `p`):
    each pipeline with `.last`, its last execution or None. Two queries whatever the history;
    `names` limits it (a live push re-rendering one row)."""
    qs = project.pipelines.select_related("credential").order_by("name")
    if names is not None:
        qs = qs.filter(name__in=names)
    pipelines = list(qs)
    last = _last_runs(pipelines)
    for p in pipelines:
        p.last = last.get(p.last_execution_id)
    return pipelines


@login_required
def project(request: HttpRequest, project: str) -> TemplateResponse:
    """The project's pipelines with their last run and a Run button each."""
    proj = project_for(request, project)
    pipelines = pipeline_rows(proj)
    n_active = proj.executions.filter(execution_state__in=ACTIVE).count()
    return TemplateResponse(request, "web/project.html",
                            {"project": proj, "pipelines": pipelines, "n_active": n_active,
                             "run_form": RunForm()})


@login_required
def pipeline_new(request: HttpRequest, project: str) -> TemplateResponse | HttpResponseRedirect:
    """Add a pipeline from a Git URL (+ a token or an SSH key, encrypted at rest)."""
    proj = project_for(request, project, "read" if request.method == "GET" else "write")
    if request.method == "GET" and not proj.can_write:
        # read-only members see the page but no form (there is nothing they may send)
        return TemplateResponse(request, "web/pipeline_new.html", {"project": proj, "form": None})
    form = PipelineForm(request.POST or None, request=request, project=proj)
    if request.method == "POST" and form.is_valid():
        try:
            pipeline = form.save()
        except IntegrityError:
            pass  # the form has the field error
        else:
            messages.success(request, f"Pipeline {pipeline.display_name or pipeline.name} added.")
            return HttpResponseRedirect(reverse("web:pipeline", args=[proj.id, pipeline.name]))
    status = 400 if request.method == "POST" else 200
    from devops.web.views_scm import (
        repositories_for_new_pipeline,  # provider repositories, next to the Git URL
    )

    return TemplateResponse(request, "web/pipeline_new.html", {"project": proj, "form": form,
                            "provider_repositories": repositories_for_new_pipeline(proj, request.user)}, status=status)


def _runs(request: HttpRequest, pipeline: Pipeline):
    """(page of runs, filters) for ?state=&branch=&page= — an index walk per page, never the whole history."""
    state = request.GET.get("state", "")
    branch = request.GET.get("branch", "").strip()
    qs = pipeline.executions.select_related("trigger_user").order_by("-run")
    if state in ExecutionState.values:
        qs = qs.filter(execution_state=state)
    else:
        state = ""
    if branch:
        qs = qs.filter(branch=branch)
    page = Paginator(qs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    return page, {"state": state, "branch": branch}


def _file_in_use(pipeline: Pipeline) -> str:
    """The pipeline file at the head of the default branch in the local mirror (no fetch; "" if unknown)."""
    from devops.pipeline import PIPELINE_FILENAMES
    from devops.scm import git

    mirror = git.mirror_path(settings.DATA_DIR, pipeline.repository_url)
    if not mirror.is_dir():
        return ""
    try:
        commit = git.resolve_commit(mirror, pipeline.default_branch)
        return git.find_file(mirror, commit, PIPELINE_FILENAMES) or ""
    except git.GitError:
        return ""


@login_required
def pipeline(request: HttpRequest, project: str, pipeline: str) -> TemplateResponse:
    """One pipeline: its runs (paged, filtered by state and branch), its spec, Run and delete."""
    proj = project_for(request, project)
    pipe = get_object_or_404(Pipeline.objects.select_related("credential"), project=proj, name=pipeline)
    page, filters = _runs(request, pipe)
    context = {"project": proj, "pipeline": pipe, "page": page, "filters": filters,
               "states": ExecutionState.values, "run_form": RunForm(initial={"branch": pipe.default_branch})}
    if request.htmx and request.htmx.target == "runs":
        return TemplateResponse(request, "web/pipeline.html#runs", context)
    context["file_in_use"] = _file_in_use(pipe)
    context["last"] = pipe.executions.order_by("-run").only("temporary_config", "run").first()
    return TemplateResponse(request, "web/pipeline.html", context)


class SeeOther(HttpResponseRedirect):
    """303: after the POST that started a run, the browser GETs the run's page."""

    status_code = 303


@login_required
def pipeline_run(request: HttpRequest, project: str, pipeline: str) -> TemplateResponse | HttpResponseRedirect:
    """GET: the Run form as a page (the dialog's fallback); POST: `do_run`, as the API's run action,
    then to the new run's page (303; htmx: HX-Redirect)."""
    proj = project_for(request, project, "read" if request.method == "GET" else "write")
    pipe = get_object_or_404(Pipeline.objects.select_related("credential"), project=proj, name=pipeline)
    form = RunForm(request.POST or None, initial={"branch": pipe.default_branch})
    error, problems = "", []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            execution = do_run(pipe, branch=data["branch"] or None, commit=data["commit"] or "",
                               user=request.user, config_text=data["config"] or None, trigger_type="user")
        except ActionError as exc:
            if isinstance(exc, PipelineFileInvalid):  # every problem, as the API's 400 lists them
                error, problems = f"{exc.filename} is invalid", exc.lines
            else:
                error = str(exc)
        else:
            messages.success(request, f"Run #{execution.run} started on {execution.branch}.",
                             extra_tags=f"run:{execution.run}")
            # To the run just started: what a newcomer clicked Run to see (steps live, the log).
            url = reverse("web:run", args=[proj.id, pipe.name, execution.run])
            return HttpResponseClientRedirect(url) if request.htmx else SeeOther(url)
    status = 400 if request.method == "POST" else 200
    return TemplateResponse(request, "web/pipeline_run.html",
                            {"project": proj, "pipeline": pipe, "run_form": form, "error": error,
                             "problems": problems}, status=status)


@login_required
@require_POST
def pipeline_delete(request: HttpRequest, project: str, pipeline: str) -> HttpResponseRedirect:
    """Delete, refused with the API's 409 message while a run is busy (`refuse_while_running`)."""
    proj = project_for(request, project, "write")
    pipe = get_object_or_404(Pipeline, project=proj, name=pipeline)
    try:
        refuse_while_running(pipe.executions.all())
    except Conflict as exc:
        messages.error(request, f"Not deleted: {exc.detail}")
        return HttpResponseRedirect(reverse("web:pipeline", args=[proj.id, pipe.name]))
    pipe.delete()
    messages.success(request, f"Pipeline {pipe.display_name or pipe.name} deleted.")
    return HttpResponseRedirect(reverse("web:project", args=[proj.id]))
