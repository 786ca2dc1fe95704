"""The ONE place execution state changes (zulip-style `do_*` actions).

The API, the CLI, the web UI, triggers and the controller loop call these;
nothing else writes `execution_state`. Each action commits, then rings the
controller's doorbell (`transaction.on_commit`) so the change is acted on
within a second.

Lifecycle (DESIGN §4) and how it is stored:
    created           Waiting,  engine == ""       (not yet admitted)
    over quota        Queueing, engine == ""
    admitted          Waiting,  engine == <name>   Initialized=Unknown
    handed to engine  Building, engine_handle set  Initialized=True
    finished          Success | Failed | Aborted | Denied   (never changed again)
An execution takes a quota slot from admission until it finishes; after a
stop it keeps `abort_requested` until the controller has stopped its runner.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.dispatch import Signal
from django.utils import timezone

from devops.models import ExecutionState as S
from devops.models import Pipeline, PipelineExecution, StageStatus, StepStatus
from devops.pipeline.config import PipelineConfig
from devops.scm import git

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "slipway_controller"

# Sent after commit whenever an execution's (or one of its steps') state
# changed, in the process that changed it: kwargs `execution` (name),
# `project_id`, `state`. Live views connect here to push updates to browsers
# (over the channel layer when they run in another process).
execution_changed = Signal()


# --- errors the CLI and API show ---------------------------------------------------


class ActionError(Exception):
    """An action was refused; the message is for the user (HTTP 400 / CLI stderr)."""


class InvalidTransition(ActionError):
    pass


class RepositoryError(ActionError):
    """The repository, branch or commit could not be read."""


class BranchNotAllowed(ActionError):
    """The pipeline's top-level `branch` constraint excludes the branch: nothing runs."""


class PipelineFileInvalid(ActionError):
    """The pipeline file (or temporary config) has errors; `problems` lists them all."""

    def __init__(self, filename: str, problems: Sequence[Any], message: str = ""):
        self.filename = filename
        self.problems = list(problems)
        self.lines = [format_problem(p, filename) for p in self.problems] or [f"{filename}: {message}"]
        super().__init__(message or f"{filename} is invalid:\n" + "\n".join(self.lines))


def _problem_is_error(p: Any) -> bool:
    severity = str(getattr(p, "severity", getattr(p, "level", "error")) or "error").lower()
    return not severity.startswith("warn")


def format_problem(p: Any, filename: str) -> str:
    """`FILE:LINE:COL: PATH: message`, the lint line format (the parser's own when it has one)."""
    if hasattr(p, "format") and not isinstance(p, str):
        return p.format(filename)
    line = getattr(p, "line", None) or 0
    col = getattr(p, "column", getattr(p, "col", None)) or 0
    path = getattr(p, "path", "") or ""
    message = getattr(p, "message", str(p))
    where = f"{filename}:{line}:{col}"
    return f"{where}: {path}: {message}" if path else f"{where}: {message}"


# --- states and transitions -----------------------------------------------------------


def allowed_transitions() -> dict[str, frozenset[str]]:
    """Every state with its one-line meaning, and where it may go next.

    Waiting   created (not admitted) or admitted and being handed to the engine
    Queueing  over the project's executor-quota; admitted (-> Waiting) when a slot frees
    Building  the engine runs it; stages/steps carry their own states
    Success   finished; every step passed or was skipped
    Failed    finished; a step failed, or it could not be run (error says why)
    Aborted   finished; stopped by a user (its runner is stopped by the controller)
    Denied    finished; refused before running (e.g. an untrusted pull request)
    Skipped   a stage/step whose `when` did not match (never an execution)
    Finished states are final: a rerun makes a NEW execution.
    """
    return {
        S.WAITING: frozenset({S.QUEUEING, S.BUILDING, S.FAILED, S.ABORTED, S.DENIED}),
        S.QUEUEING: frozenset({S.WAITING, S.FAILED, S.ABORTED, S.DENIED}),
        S.BUILDING: frozenset({S.SUCCESS, S.FAILED, S.ABORTED}),
        S.SUCCESS: frozenset(),
        S.FAILED: frozenset(),
        S.ABORTED: frozenset(),
        S.DENIED: frozenset(),
        S.SKIPPED: frozenset(),
    }


_TRANSITIONS = allowed_transitions()


def check_transition(old: str, new: str) -> None:
    if new not in _TRANSITIONS.get(old, frozenset()):
        raise InvalidTransition(f"an execution cannot go from {old} to {new}")


def sources_of(new: str) -> list[str]:
    """The states from which `new` may be entered (for conditional UPDATEs)."""
    return [old for old, targets in _TRANSITIONS.items() if new in targets]


def set_condition(conditions: list[dict], type_: str, status: str, reason: str = "", message: str = "") -> list[dict]:
    """Rancher-style conditions list with `type_` replaced."""
    now = timezone.now().isoformat()
    rest = [c for c in conditions or [] if c.get("type") != type_]
    return [*rest, {"type": type_, "status": status, "lastUpdateTime": now, "reason": reason, "message": message}]


# --- the doorbell -------------------------------------------------------------------------


def ring_controllers() -> None:
    """Wake controllers: the local doorbell, and NOTIFY on PostgreSQL (other machines)."""
    from devops.doorbell import ring

    ring(settings.DATA_DIR)
    if connection.vendor == "postgresql":
        try:
            with connection.cursor() as cur:
                cur.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])
        except Exception:  # a wake-up is best effort; the idle timeout covers a miss
            log.debug("NOTIFY failed", exc_info=True)


def _ring_on_commit(execution: PipelineExecution | None = None, state: str = "") -> None:
    transaction.on_commit(ring_controllers)
    if execution is not None:
        announce_on_commit(execution, state)


def announce_on_commit(execution: PipelineExecution, state: str) -> None:
    """`execution_changed` once the current transaction commits (never for a rolled-back change)."""
    name, project_id = execution.name, execution.project_id
    transaction.on_commit(lambda: execution_changed.send(
        sender=PipelineExecution, execution=name, project_id=project_id, state=state))


# --- reading the pipeline file -------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """What a run executes: the commit and its pipeline config."""

    branch: str
    commit: str
    ref: str
    message: str
    author: str
    author_email: str
    config: PipelineConfig
    config_text: str
    filename: str


def git_auth_of(pipeline: Pipeline) -> git.Auth:
    cred = pipeline.credential
    if cred is None:
        return git.NO_AUTH
    return git.Auth(token=cred.access_token or "", username=cred.login_name or "",
                    ssh_private_key=cred.ssh_private_key or "")


def parse_config(text: str, filename: str) -> tuple[PipelineConfig, list[Any]]:
    """Parse and validate; raise PipelineFileInvalid with every problem. Returns warnings too."""
    from devops.pipeline import load

    result = load(text, filename=filename)
    problems = list(getattr(result, "problems", []) or [])
    errors = [p for p in problems if _problem_is_error(p)]
    if result.config is None or errors:
        raise PipelineFileInvalid(filename, errors or problems, "" if problems else "invalid pipeline file")
    return result.config, problems


def read_source(
    pipeline: Pipeline, *, branch: str | None, commit: str = "", ref: str = "",
    config_text: str | None = None, config_filename: str = "",
) -> Source:
    """Fetch the mirror, resolve the commit, read and validate the pipeline file."""
    from devops.pipeline import PIPELINE_FILENAMES
    from devops.pipeline.problems import ERROR, Problem
    from devops.pipeline.yamltree import MAX_BYTES

    try:
        mirror = git.update_mirror(settings.DATA_DIR, pipeline.repository_url, git_auth_of(pipeline))
        named = bool(branch)  # a name the caller chose may be a tag or a commit id
        if not branch:
            if ref.startswith("refs/heads/"):
                branch = ref[len("refs/heads/"):]
            else:
                branch = pipeline.default_branch if git.branch_exists(mirror, pipeline.default_branch) \
                    else git.default_branch(mirror)
        if not commit:
            commit = git.resolve_commit(mirror, ref or branch)
        else:
            commit = git.resolve_commit(mirror, commit)
        info = git.commit_info(mirror, commit)
        if not ref:
            ref = _ref_named(mirror, branch) if named else f"refs/heads/{branch}"
        if config_text is None:
            filename = git.find_file(mirror, commit, PIPELINE_FILENAMES)
            if filename is None:
                raise PipelineFileInvalid(
                    PIPELINE_FILENAMES[0], [],
                    f"no pipeline file ({', '.join(PIPELINE_FILENAMES)}) at {branch}@{commit[:12]}",
                )
            config_text = git.read_file(mirror, commit, filename, limit=MAX_BYTES).decode("utf-8", errors="replace")
        else:
            filename = config_filename or PIPELINE_FILENAMES[0]
    except git.FileTooLarge as exc:
        # Refused with lint's own problem (yamltree.compose), before a byte is read.
        message = f"the file is {exc.size} bytes; the limit is {MAX_BYTES} bytes (1 MiB)"
        raise PipelineFileInvalid(exc.path, [Problem("", 1, 1, ERROR, message)]) from None
    except git.GitError as exc:
        raise RepositoryError(str(exc)) from None
    config, _warnings = parse_config(config_text, filename)
    return Source(branch=branch, commit=commit, ref=ref, message=info.message,
                  author=info.author, author_email=info.author_email, config=config,
                  config_text=config_text, filename=filename)


def _ref_named(mirror, name: str) -> str:
    """The full ref a run of `name` means: its branch, else its tag, else "" (a commit id).

    A manual run may name a tag or a commit; CICD_GIT_REF / CICD_GIT_TAG must
    say so instead of pretending `refs/heads/<name>`.
    """
    if re.fullmatch(r"[0-9a-f]{7,64}", name) and git.resolve_commit(mirror, name).startswith(name):
        return ""  # resolve_commit took it as a commit id first
    for full in (f"refs/heads/{name}", f"refs/tags/{name}"):
        if git.run_git(["rev-parse", "--verify", "-q", full], cwd=mirror, check=False).returncode == 0:
            return full
    return ""


# --- actions ------------------------------------------------------------------------------------


def do_run(
    pipeline: Pipeline,
    *,
    branch: str | None = None,
    user=None,
    event: str = "",
    commit: str = "",
    ref: str = "",
    message: str = "",
    author: str = "",
    author_email: str = "",
    trigger_type: str = "user",
    config_text: str | None = None,
    config_filename: str = "",
) -> PipelineExecution:
    """Start a run of `pipeline` on `branch` (default: the pipeline's default branch).

    Reads the pipeline file from the repository at the commit, unless
    `config_text` (a temporary config: YAML run without being committed) is
    given. Raises PipelineFileInvalid (with every problem), BranchNotAllowed
    (top-level `branch` constraint), RepositoryError. Stages and steps whose
    `when` does not match are Skipped from the start; the engine evaluates
    the same constraints with the same branch and event.
    """
    src = read_source(pipeline, branch=branch, commit=commit, ref=ref, config_text=config_text,
                      config_filename=config_filename)
    from devops.pipeline import should_run

    if not should_run(src.config, branch=src.branch, event=event):
        raise BranchNotAllowed(f"branch {src.branch!r} is excluded by the pipeline's branch constraint")
    return _create_execution(
        pipeline, config=src.config, config_text=src.config_text,
        temporary_config=config_text is not None, branch=src.branch, commit=src.commit, ref=src.ref,
        event=event, message=message or src.message, author=author or src.author,
        author_email=author_email or src.author_email, trigger_type=trigger_type, user=user,
    )


def do_rerun(execution: PipelineExecution, user=None) -> PipelineExecution:
    """A NEW execution with the same config and commit (as Rancher's rerun)."""
    if not execution.is_finished:
        raise InvalidTransition(f"{execution.name} is {execution.execution_state}; only a finished run can be rerun")
    return _create_execution(
        execution.pipeline, config=PipelineConfig.from_json(execution.config),
        config_text=execution.config_text, temporary_config=execution.temporary_config,
        branch=execution.branch, commit=execution.commit, ref=execution.ref, event=execution.event,
        message=execution.message, author=execution.author, author_email=execution.author_email,
        trigger_type="user", user=user, rerun_of=execution,
    )


def _create_execution(pipeline: Pipeline, *, config: PipelineConfig, user=None, rerun_of=None,
                      **fields: Any) -> PipelineExecution:
    now = timezone.now()
    with transaction.atomic():
        # The row lock (PostgreSQL) / the IMMEDIATE write lock (SQLite)
        # makes the run number allocation atomic across processes.
        locked = Pipeline.objects.select_for_update().only("id", "next_run").get(pk=pipeline.pk)
        run = locked.next_run
        Pipeline.objects.filter(pk=pipeline.pk).update(
            next_run=F("next_run") + 1, last_execution_id=f"{pipeline.name}-{run}",
            last_run_state=S.WAITING, last_started=now,
        )
        execution = PipelineExecution.objects.create(
            project_id=pipeline.project_id, pipeline=pipeline, name=f"{pipeline.name}-{run}", run=run,
            repository_url=pipeline.repository_url, config=config.to_json(), trigger_user=user,
            rerun_of=rerun_of, conditions=[], **fields,
        )
        _create_status_rows(execution, config)
        _ring_on_commit(execution, S.WAITING)
    pipeline.refresh_from_db(fields=["next_run", "last_execution_id", "last_run_state", "last_started"])
    return execution


def step_label(step) -> str:
    t = step.type
    return {
        "sourceCodeConfig": "clone",
        "runScriptConfig": getattr(t, "image", ""),
        "publishImageConfig": getattr(t, "tag", ""),
    }.get(step.kind, step.kind)


def _create_status_rows(execution: PipelineExecution, config: PipelineConfig) -> None:
    stages, steps = [], []
    for si, stage in enumerate(config.stages):
        stage_on = stage.when is None or stage.when.matches(branch=execution.branch, event=execution.event)
        any_on = False
        for ji, step in enumerate(stage.steps):
            on = stage_on and (step.when is None or step.when.matches(branch=execution.branch, event=execution.event))
            any_on |= on
            steps.append(StepStatus(
                execution=execution, stage_index=si, index=ji, name=step_label(step)[:255],
                state=S.WAITING if on else S.SKIPPED, message="" if on else "when does not match",
            ))
        stages.append(StageStatus(execution=execution, index=si, name=stage.name[:255],
                                  state=S.WAITING if any_on else S.SKIPPED))
    StageStatus.objects.bulk_create(stages)
    StepStatus.objects.bulk_create(steps)


def do_stop(execution: PipelineExecution, user=None) -> bool:
    """Abort an active execution. Returns False when it had already finished.

    Building stages/steps become Aborted at once. If the engine had it (it
    was admitted), `abort_requested` stays set until the controller has
    called engine.stop(), which kills the running steps.
    """
    now = timezone.now()
    with transaction.atomic():
        row = PipelineExecution.objects.select_for_update().get(pk=execution.pk)
        if row.is_finished:
            return False
        check_transition(row.execution_state, S.ABORTED)
        who = getattr(user, "username", "") or "a user"
        changed = PipelineExecution.objects.filter(pk=row.pk, execution_state=row.execution_state).update(
            execution_state=S.ABORTED, ended=now, abort_requested=bool(row.engine),
            conditions=set_condition(row.conditions, "Aborted", "True", "Stopped", f"stopped by {who}"),
        )
        if not changed:
            return False
        StageStatus.objects.filter(execution=row, state=S.BUILDING).update(state=S.ABORTED, ended=now)
        StepStatus.objects.filter(execution=row, state=S.BUILDING).update(state=S.ABORTED, ended=now,
                                                                          message=f"stopped by {who}")
        _update_pipeline_status(row, S.ABORTED)
        _ring_on_commit(row, S.ABORTED)
    execution.refresh_from_db()
    return True


def do_finish(execution: PipelineExecution, state: str, *, error: str = "", ended=None) -> bool:
    """Finish an active execution with `state` (Success, Failed, Aborted, Denied).

    Conditional on the stored state still being active, so when two
    controllers (or a controller and a user's stop) race, exactly one wins;
    returns whether this call did it. Building steps take the final state
    (a Failed one gets `error` as its message when it has none).
    """
    ended = ended or timezone.now()
    with transaction.atomic():
        row = PipelineExecution.objects.select_for_update().get(pk=execution.pk)
        if row.is_finished:
            return False
        check_transition(row.execution_state, state)
        conditions = row.conditions
        if state == S.FAILED and error:
            conditions = set_condition(conditions, "Failed", "True", "Error", error)
        changed = PipelineExecution.objects.filter(pk=row.pk, execution_state=row.execution_state).update(
            execution_state=state, ended=ended, error=error or row.error, conditions=conditions,
        )
        if not changed:
            return False
        final = S.FAILED if state == S.DENIED else state
        StepStatus.objects.filter(execution=row, state=S.BUILDING, message="").update(
            state=final, ended=ended, message=error if state == S.FAILED else "")
        StepStatus.objects.filter(execution=row, state=S.BUILDING).update(state=final, ended=ended)
        StageStatus.objects.filter(execution=row, state=S.BUILDING).update(state=final, ended=ended)
        _update_pipeline_status(row, state)
        _ring_on_commit(row, state)
    execution.refresh_from_db()
    return True


def _update_pipeline_status(execution: PipelineExecution, state: str) -> None:
    """Mirror the latest execution's state on its pipeline (Rancher's lastRunState)."""
    Pipeline.objects.filter(pk=execution.pipeline_id, last_execution_id=execution.name).update(
        last_run_state=state)
