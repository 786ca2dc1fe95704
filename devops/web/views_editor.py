"""The visual pipeline editor: `/p/<project>/pipelines/<pipeline>/edit?branch=B` (issue 11).

One document, two views. The page holds the file's text; the visual view is
rendered from it on the server (`editor_form.build`), and every visual edit is
one operation (`devops.pipeline.operations.apply_ops`) that the browser posts
with the text it has:

    GET  edit?branch=B     the page: the file at the head of B (or the starter pipeline)
    POST edit/op           {text, op, selected} -> {text, visual, problems, ...}   (write level)
    POST edit/lint         {text, selected}     -> the same, the text unchanged   (read level: the YAML tab)
    POST edit/save         {text, head, branch, filename, action=diff|commit|new-branch|download|run}

A bad op is a 400 naming the field (`op`) and the op's path. Save is refused
while lint reports an error; a commit whose branch moved since the editor
opened (the head sha the form carries) is refused with a 409 and a reload link,
never a silent overwrite. "Run without committing" is `do_run(config_text=...)`,
the run dialog's temporary config: the run page marks it and shows its YAML.
"""
from __future__ import annotations

import difflib
import json
import logging
import re
from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from devops.models import Pipeline
from devops.pipeline import PIPELINE_FILENAMES, EditError, lint_text
from devops.pipeline.kinds import STEP_KINDS
from devops.pipeline.yamltree import MAX_BYTES
from devops.web import editor_form
from devops.web.access import project_for

log = logging.getLogger(__name__)
MAX_OPS = 50  # one request carries a user gesture, never a script of thousands
MAX_OP_DEPTH = 66  # an op list, an op, then a value as deep as a file may nest (yamltree's 64)


@dataclass
class Opened:
    """The pipeline file of a branch head as the editor opens it."""

    text: str
    filename: str
    head: str  # the commit the editor opened at ("" when the branch does not exist yet)
    exists: bool  # the file exists at that head (else: the starter pipeline)
    error: str = ""


def _pipeline(request: HttpRequest, project: str, pipeline: str, level: str = "read"):
    proj = project_for(request, project, level)
    pipe = get_object_or_404(Pipeline.objects.select_related("credential"), project=proj, name=pipeline)
    return proj, pipe


def open_file(pipe: Pipeline, branch: str) -> Opened:
    """`.devops.yml` (else the Rancher file Slipway would run) at `branch`'s head, or the starter pipeline."""
    from devops.controller.actions import ActionError
    from devops.controller.actions.editor import CommitError, open_pipeline_file
    from devops.pipeline.operations import starter_pipeline

    try:
        f = open_pipeline_file(pipe, branch)
    except (CommitError, ActionError) as exc:  # no such branch, or the repository cannot be reached
        return Opened(starter_pipeline(), PIPELINE_FILENAMES[0], "", False, str(exc))
    return Opened(f.text, f.path, f.head, not f.starter)


def _secrets(proj) -> dict[str, list[str]]:
    """Secret name -> its keys, for envFrom pickers. Never a value."""
    return {s.name: sorted((s.data or {}).keys()) for s in proj.secrets.all()}


def _problems(text: str):
    try:
        return lint_text(text)
    except Exception as exc:  # lint never raises on text; if it does, say so rather than 500
        from devops.pipeline.problems import ERROR, Problem

        return [Problem("", 1, 1, ERROR, f"lint failed: {exc}")]


def _state(request: HttpRequest, proj, pipe, text: str, selected: str) -> dict:
    """Everything the visual view and the problem list need for `text`."""
    problems = _problems(text)
    secrets = _secrets(proj)
    model = editor_form.build(text, problems, secrets)
    if selected != "pipeline" and model.find(selected) is None:
        selected = "pipeline"
    return {"project": proj, "pipeline": pipe, "model": model, "problems": problems, "selected": selected,
            "item": model.find(selected), "step_kinds": STEP_KINDS, "new_step": editor_form.NEW_STEP,
            "cicd_vars": editor_form.CICD_VARS, "can_write": proj.can_write, "secrets": secrets,
            "n_errors": sum(p.is_error for p in problems)}


def _json_state(request: HttpRequest, ctx: dict, text: str) -> JsonResponse:
    return JsonResponse({
        "text": text,
        "selected": ctx["selected"],
        "visual": render_to_string("web/editor_visual.html", ctx, request),
        "problems_html": render_to_string("web/editor_problems.html", ctx, request),
        "problems": [p.to_dict() for p in ctx["problems"]],
        "errors": ctx["n_errors"],
    })


def _bad(field: str, message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"field": field, "error": f"{field}: {message}"}, status=status)


def _text_of(request: HttpRequest) -> str | None:
    """The posted text. Browsers send a form's line breaks as CRLF and CodeMirror keeps LF, so
    the text is read with LF and given back the file's own ending (`eol=crlf`) in one place."""
    text = request.POST.get("text")
    if text is None:
        return None
    text = text.replace("\r\n", "\n")
    return text.replace("\n", "\r\n") if request.POST.get("eol") == "crlf" else text


@login_required
@require_GET
def editor(request: HttpRequest, project: str, pipeline: str) -> TemplateResponse:
    """The editor page: the file at the head of ?branch= (default: the pipeline's), both views."""
    proj, pipe = _pipeline(request, project, pipeline)
    branch = (request.GET.get("branch") or pipe.default_branch).strip()
    opened = open_file(pipe, branch)
    ctx = _state(request, proj, pipe, opened.text, request.GET.get("selected", "pipeline"))
    ctx.update({"opened": opened, "branch": branch, "text": opened.text,
                "problems_json": [p.to_dict() for p in ctx["problems"]]})
    return TemplateResponse(request, "web/editor.html", ctx)


@login_required
@require_POST
def editor_op(request: HttpRequest, project: str, pipeline: str) -> JsonResponse:
    """Apply one visual operation (or a short list) to the posted text; the new text and views."""
    from devops.pipeline.operations import apply_ops

    proj, pipe = _pipeline(request, project, pipeline, "write")
    text = _text_of(request)
    if text is None:
        return _bad("text", "the pipeline text is required")
    if len(text.encode()) > MAX_BYTES:
        return _bad("text", f"the file is over {MAX_BYTES} bytes")
    raw = request.POST.get("op", "")
    if len(raw) > MAX_BYTES:
        return _bad("op", f"over {MAX_BYTES} characters")
    try:
        ops = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." deeper than the decoder goes
        return _bad("op", "not JSON: an op is {\"op\": \"set\", \"path\": ..., \"value\": ...}")
    if _depth(ops) > MAX_OP_DEPTH:
        return _bad("op", f"a value nests deeper than {MAX_OP_DEPTH} levels")
    ops = ops if isinstance(ops, list) else [ops]
    if not ops or len(ops) > MAX_OPS or not all(isinstance(o, dict) for o in ops):
        return _bad("op", f"one op or a list of 1 to {MAX_OPS} ops (JSON objects)")
    try:
        new = apply_ops(text, ops)
    except EditError as exc:
        return _bad("op", str(exc))
    except Exception:  # a bug, not the user's input: logged, and said plainly
        log.exception("apply_ops failed on %s/%s for %r", proj.id, pipe.name, ops)
        return _bad("op", "the edit failed on the server (a bug, logged); the text is unchanged", status=500)
    selected = _follow(request.POST.get("selected", "pipeline"), ops)
    return _json_state(request, _state(request, proj, pipe, new, selected), new)


def _depth(value, limit: int = 100) -> int:
    """How deep `value` nests (lists and dicts), counting no further than `limit`."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        v, d = todo.pop()
        if d > limit:
            return d
        deepest = max(deepest, d)
        if isinstance(v, dict):
            todo.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            todo.extend((x, d + 1) for x in v)
    return deepest


def _follow(selected: str, ops: list[dict]) -> str:
    """The selection after the ops: a moved item stays selected at its new place."""
    for o in ops:
        if o.get("op") == "move" and isinstance(o.get("from"), str) and isinstance(o.get("to"), str):
            if selected == o["from"]:
                selected = o["to"]
            elif selected.startswith(o["from"] + "."):
                selected = o["to"] + selected[len(o["from"]):]
        elif o.get("op") == "insert" and re.fullmatch(r"stages\[\d+\]\.steps\[\d+\]", str(o.get("path"))):
            selected = o["path"]  # a new step opens in the side panel
        elif o.get("op") == "delete" and re.fullmatch(r"stages\[\d+\](\.steps\[\d+\])?", str(o.get("path"))):
            selected = "pipeline"  # the items after it moved up: nothing stays selected by mistake
    return selected


@login_required
@require_POST
def editor_lint(request: HttpRequest, project: str, pipeline: str) -> JsonResponse:
    """Lint the posted text (the YAML tab, debounced) and re-render the visual view from it."""
    proj, pipe = _pipeline(request, project, pipeline)
    text = _text_of(request)
    if text is None:
        return _bad("text", "the pipeline text is required")
    if len(text.encode()) > MAX_BYTES:
        return _bad("text", f"the file is over {MAX_BYTES} bytes")
    return _json_state(request, _state(request, proj, pipe, text, request.POST.get("selected", "pipeline")), text)


SAVE_ACTIONS = ("diff", "commit", "new-branch", "download", "run")


@login_required
@require_POST
def editor_save(request: HttpRequest, project: str, pipeline: str) -> HttpResponse:
    """The diff first (action=diff), then commit / commit to a new branch / download / run without committing."""
    proj, pipe = _pipeline(request, project, pipeline, "write")
    text = _text_of(request)
    action = request.POST.get("action", "")
    branch = request.POST.get("branch", "").strip() or pipe.default_branch
    filename = request.POST.get("filename", "") or PIPELINE_FILENAMES[0]
    head = request.POST.get("head", "").strip()
    ctx = {"project": proj, "pipeline": pipe, "branch": branch, "filename": filename, "head": head, "text": text,
           "message": request.POST.get("message", ""), "new_branch": request.POST.get("new_branch", ""),
           "diff": None, "fragment": bool(request.POST.get("fragment"))}
    if text is None:
        return _save_error(request, ctx, "text: the pipeline text is required")
    if action not in SAVE_ACTIONS:
        return _save_error(request, ctx, f"action: one of {', '.join(SAVE_ACTIONS)}")
    if filename not in PIPELINE_FILENAMES:
        return _save_error(request, ctx, f"filename: one of {', '.join(PIPELINE_FILENAMES)}")
    if head and not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", head):
        # it reaches git's argv (the diff reads the file at it): a commit id, never an option or a ref
        return _save_error(request, ctx, "head: the full commit id the editor opened")
    errors = [p for p in _problems(text) if p.is_error]
    if errors:
        ctx["problems"] = errors
        return _save_error(request, ctx, f"The file has {len(errors)} error(s); fix them before saving.")
    if action == "download":
        response = HttpResponse(text, content_type="application/x-yaml; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename.lstrip(".") or "devops.yml"}"'
        return response
    if action == "diff":
        ctx["diff"] = _diff(pipe, head, filename, text)
        return TemplateResponse(request, _save_template(ctx), ctx)
    if action == "run":
        return _run(request, proj, pipe, ctx)
    return _commit(request, proj, pipe, ctx, action)


def _save_error(request, ctx: dict, error: str, status: int = 400) -> TemplateResponse:
    ctx["error"] = error
    return TemplateResponse(request, _save_template(ctx), ctx, status=status)


def _save_template(ctx: dict) -> str:
    """The editor's Save dialog asks for the box alone (fragment=1); a plain form post gets the page."""
    return "web/editor_save.html#save-box" if ctx["fragment"] else "web/editor_save.html"


def original_text(pipe: Pipeline, head: str, filename: str) -> str:
    """The file as the editor opened it (at `head`), "" when it did not exist."""
    from devops.controller.actions.source import git_auth_of
    from devops.scm import git

    if not head:
        return ""
    try:
        mirror = git.mirror_path(settings.DATA_DIR, pipe.repository_url)
        if not (mirror / "HEAD").exists() or git.run_git(["cat-file", "-e", head], cwd=mirror,
                                                          check=False).returncode != 0:
            mirror = git.update_mirror(settings.DATA_DIR, pipe.repository_url, git_auth_of(pipe))
        data = git.read_file(mirror, head, filename, limit=MAX_BYTES)
    except git.GitError:
        return ""
    return (data or b"").decode("utf-8", errors="replace")


def _diff(pipe: Pipeline, head: str, filename: str, text: str) -> list[str]:
    before = original_text(pipe, head, filename)
    return [line.rstrip("\n") for line in difflib.unified_diff(
        before.splitlines(keepends=True), text.splitlines(keepends=True),
        fromfile=f"a/{filename}", tofile=f"b/{filename}")]


def _run(request, proj, pipe, ctx) -> HttpResponse:
    from devops.controller.actions import ActionError, PipelineFileInvalid
    from devops.controller.actions.editor import do_run_edited

    try:
        execution = do_run_edited(pipe, user=request.user, branch=ctx["branch"], text=ctx["text"],
                                  filename=ctx["filename"])
    except ActionError as exc:
        if isinstance(exc, PipelineFileInvalid):
            ctx["problems"] = exc.lines
        return _save_error(request, ctx, f"Not started: {exc}")
    messages.success(request, f"Run #{execution.run} started on {execution.branch} with the edited config "
                              "(not committed).", extra_tags=f"run:{execution.run}")
    return HttpResponseRedirect(reverse("web:run", args=[proj.id, pipe.name, execution.run]))


def _commit(request, proj, pipe, ctx, action: str) -> HttpResponse:
    from devops.controller.actions import ActionError, PipelineFileInvalid
    from devops.controller.actions.editor import (
        BranchExists,
        BranchMoved,
        CommitError,
        do_commit_pipeline_file,
    )

    message = ctx["message"].strip()
    if not message:
        return _save_error(request, ctx, "message: a commit message is required")
    target = ctx["branch"]
    base = ctx["head"]
    if action == "new-branch":
        target = ctx["new_branch"].strip()
        if not target:
            return _save_error(request, ctx, "new_branch: the name of the new branch is required")
    if not base:
        # Without the commit the editor opened there is no parent: a push would make an orphan branch.
        return _save_error(request, ctx, f"head: the editor did not open a commit of {ctx['branch']}; open an "
                                         "existing branch, then commit to it or to a new branch")
    try:
        sha = do_commit_pipeline_file(pipe, user=request.user, branch=ctx["branch"], path=ctx["filename"],
                                      text=ctx["text"], message=message, expected_head=base,
                                      new_branch=target if action == "new-branch" else None)
    except BranchMoved as exc:
        ctx["reload"] = reverse("web:pipeline-edit", args=[proj.id, pipe.name]) + "?" + urlencode(
            {"branch": ctx["branch"]})
        return _save_error(request, ctx, f"Not committed: {exc}.", status=409)
    except (BranchExists, CommitError) as exc:
        return _save_error(request, ctx, f"Not committed: {exc}", status=409)
    except ActionError as exc:  # lint errors (checked again there), or the repository cannot be reached
        if isinstance(exc, PipelineFileInvalid):
            ctx["problems"] = exc.lines
        return _save_error(request, ctx, f"Not committed: {exc}", status=400)
    messages.success(request, f"Committed {ctx['filename']} to {target} ({sha[:10]}).")
    return HttpResponseRedirect(reverse("web:pipeline-edit", args=[proj.id, pipe.name]) + "?"
                                + urlencode({"branch": target}))  # `&`, `#` are valid in branch names
