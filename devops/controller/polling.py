"""Generic Git polling: a controller step that runs a pipeline when a watched branch moves.

For pipelines with `poll_interval` > 0 (seconds), once per interval:
`git ls-remote --heads origin` inside the pipeline's bare mirror (the
remote the mirror fetches from; credentials through `git.credential_env`,
never argv), compared with `poll_heads`, what the previous poll saw. Each
watched branch (`poll_branches` globs, none = the default branch) whose
commit changed, or that appeared, runs through `do_run(event="push",
trigger_type="poll")`. Nothing changed costs one `ls-remote` (no fetch, no
pipeline file read) and one UPDATE. The first poll that sees watched
branches records them as a baseline and runs nothing (turning polling on
must not start a run for every branch; a failed first poll changes
nothing of that).

Why it lives in the controller package: it is a loop step that starts runs
through `do_run`; the triggers layer sits above the controller, which may
not import it (pyproject.toml's layers contract; docs/architecture.md).

A branch whose run is refused by the file's `branch` constraint or whose
pipeline file is invalid is remembered as seen (the same commit fails the
same way); one whose repository could not be read is not, so the next
poll tries it again. One pipeline's failure never stops the others'.
"""
from __future__ import annotations

import fnmatch
import logging
from datetime import datetime, timedelta

from django.conf import settings

from devops.controller.actions import (
    ActionError,
    BranchNotAllowed,
    RepositoryError,
    do_run,
    git_auth_of,
)
from devops.models import Pipeline
from devops.scm import git

log = logging.getLogger(__name__)

LOOK_EVERY = timedelta(seconds=5)  # how often the loop asks which pipelines are due (one query)
LS_REMOTE_TIMEOUT = 30.0            # seconds; a slow remote must not hold the loop for long


def heads(pipeline: Pipeline) -> dict[str, str]:
    """{"refs/heads/<branch>": commit} of the pipeline's remote (creates the mirror the first time)."""
    auth = git_auth_of(pipeline)
    mirror = git.mirror_path(settings.DATA_DIR, pipeline.repository_url)
    if not (mirror / "HEAD").exists():
        git.update_mirror(settings.DATA_DIR, pipeline.repository_url, auth)
    proc = git.run_git(["ls-remote", "--heads", "origin"], cwd=mirror, auth=auth, timeout=LS_REMOTE_TIMEOUT)
    out: dict[str, str] = {}
    for line in proc.stdout.decode(errors="replace").splitlines():
        sha, _, ref = line.partition("\t")
        if ref.startswith("refs/heads/") and len(sha) >= 40:
            out[ref] = sha
    return out


def watched(pipeline: Pipeline, ref: str) -> bool:
    patterns = [p for p in (pipeline.poll_branches or []) if isinstance(p, str) and p] or [pipeline.default_branch]
    branch = ref[len("refs/heads/"):]
    return any(fnmatch.fnmatchcase(branch, p) for p in patterns)


def poll_pipeline(pipeline: Pipeline, now: datetime) -> list[str]:
    """One poll of one pipeline; the names of the runs it started."""
    try:
        current = {ref: sha for ref, sha in heads(pipeline).items() if watched(pipeline, ref)}
    except (git.GitError, ActionError) as exc:
        log.warning("%s: polling %s failed: %s", pipeline.name, pipeline.repository_url, exc)
        Pipeline.objects.filter(pk=pipeline.pk).update(polled_at=now)
        return []
    seen = dict(pipeline.poll_heads or {})
    started: list[str] = []
    if seen:  # else the baseline: recorded, nothing runs
        for ref, sha in sorted(current.items()):
            if seen.get(ref) == sha:
                continue
            branch = ref[len("refs/heads/"):]
            try:
                execution = do_run(pipeline, branch=branch, commit=sha, ref=ref, event="push", trigger_type="poll")
            except BranchNotAllowed:
                log.info("%s: %s moved to %s; the branch constraint excludes it", pipeline.name, branch, sha[:12])
            except RepositoryError as exc:
                log.warning("%s: %s moved to %s but could not be read: %s", pipeline.name, branch, sha[:12], exc)
                current[ref] = seen.get(ref, "")  # try again next poll
                continue
            except ActionError as exc:
                log.warning("%s: %s@%s: %s", pipeline.name, branch, sha[:12], exc)
            else:
                started.append(execution.name)
                log.info("%s: %s moved to %s: started %s", pipeline.name, branch, sha[:12], execution.name)
    Pipeline.objects.filter(pk=pipeline.pk).update(
        poll_heads={ref: sha for ref, sha in current.items() if sha}, polled_at=now)
    return started


def due(pipeline: Pipeline, now: datetime) -> bool:
    return pipeline.polled_at is None or pipeline.polled_at + timedelta(seconds=pipeline.poll_interval) <= now


def tick_poll(controller) -> bool:
    """Controller step: poll the pipelines whose interval has passed; True if a run started."""
    if controller.stopping:
        return False
    now = controller.now()
    # Kept on the controller (not here) so each controller, and each test's, has its own clock.
    if now < getattr(controller, "_next_poll_look", now):
        return False
    controller._next_poll_look = now + LOOK_EVERY
    did = False
    for pipeline in Pipeline.objects.filter(poll_interval__gt=0, pipeline_state="active").select_related(
            "project", "credential"):
        if controller.stopping:
            break
        if not due(pipeline, now):
            continue
        try:
            did = bool(poll_pipeline(pipeline, now)) or did
        except Exception:  # a database hiccup, a bug: the other pipelines still get polled
            log.exception("%s: poll failed", pipeline.name)
    return did
