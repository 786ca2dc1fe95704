"""`pipeline run` and `pipeline logs` (routed by devops/management/commands/pipeline.py).

    pipeline run REPO [--branch B] [--file F] [--project P] [--detach]
    pipeline logs EXECUTION [--stage N --step M]

Exit codes of `run`: 0 Success; 1 Failed or Aborted; 2 the pipeline file is
invalid (lint lines `FILE:LINE:COL: PATH: message` on stderr); 3 the run
could not start (repository, branch, project). With --detach the
execution's name is the last line of stdout and the exit code is 0.

Without --detach, `run` drives the controller inline when no controller is
running (heartbeat files), else follows the running one; either way it
prints each step's output as it comes, every line prefixed with
`[STAGE.STEP NAME] ` (stage indices count the Clone stage).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.conf import settings

from devops.controller import heartbeat
from devops.controller.actions import ActionError, PipelineFileInvalid, do_run
from devops.logs import LogKey, get_log_store
from devops.models import ExecutionState as S
from devops.models import Pipeline, PipelineExecution, Project, StageStatus, StepStatus
from devops.scm import git

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_CANNOT_START = 0, 1, 2, 3
POLL = 0.1  # seconds between log reads while following a run


def add_arguments(name: str, parser) -> None:
    if name == "run":
        parser.add_argument("repo", help="a local path or a Git URL")
        parser.add_argument("--branch", "-b", default=None, help="default: the repository's default branch")
        parser.add_argument("--file", "-f", default=None, help="run this file as a temporary config")
        parser.add_argument("--project", "-p", default="default", help="project id or name (created if missing)")
        parser.add_argument("--detach", "-d", action="store_true", help="print the execution's name and return")
    elif name == "logs":
        parser.add_argument("execution", help="an execution name, e.g. p-abcde-3")
        parser.add_argument("--stage", type=int, default=None, help="stage index (counts the Clone stage)")
        parser.add_argument("--step", type=int, default=None, help="step index within the stage")


def handle(name: str, options: dict[str, Any], stdout, stderr) -> int:
    if name == "run":
        return run(options, stdout, stderr)
    if name == "logs":
        return logs(options, stdout, stderr)
    raise ValueError(name)


# --- run ---------------------------------------------------------------------------------


def project_named(ref: str) -> Project:
    """A project by id or name; `ref` is created (as a name) when missing."""
    from devops.controller.projects import do_create_project, get_project

    try:
        return get_project(ref)
    except Project.DoesNotExist:
        return do_create_project(ref, description="created by `pipeline run`")


def pipeline_for(project: Project, repo: str) -> Pipeline:
    """The project's pipeline of this repository, registered on first use.

    A URL with credentials in it is refused (GitError): they would be stored,
    shown and logged with the URL.
    """
    if git.embedded_credentials(repo):
        raise git.GitError(f"the repository URL {git.CREDENTIALS_IN_URL}")
    url = git.normalise_url(repo)
    pipeline = Pipeline.objects.filter(project=project, repository_url=url).order_by("created").first()
    if pipeline is not None:
        return pipeline
    mirror = git.update_mirror(settings.DATA_DIR, url)
    from devops.controller.spec import repo_name

    return Pipeline.objects.create(project=project, repository_url=url, display_name=repo_name(url),
                                   default_branch=git.default_branch(mirror))


def run(options: dict[str, Any], stdout, stderr) -> int:
    config_text = filename = None
    if options.get("file"):
        try:
            config_text = Path(options["file"]).read_text()
        except OSError as exc:
            stderr.write(f"cannot read {options['file']}: {exc.strerror}")
            return EXIT_CANNOT_START
        filename = options["file"]
    try:
        project = project_named(options.get("project") or "default")
        pipeline = pipeline_for(project, options["repo"])
        execution = do_run(pipeline, branch=options.get("branch"), config_text=config_text,
                           config_filename=filename or "", trigger_type="user")
    except PipelineFileInvalid as exc:
        for line in exc.lines:
            stderr.write(line)
        return EXIT_INVALID
    except (ActionError, git.GitError) as exc:
        stderr.write(f"cannot run: {exc}")
        return EXIT_CANNOT_START
    if options.get("detach"):
        stdout.write(execution.name)
        return EXIT_OK
    stdout.write(f"{execution.name}: {execution.branch}@{execution.commit[:12]} ({execution.repository_url})")
    state = follow(execution, stdout)
    stdout.write(f"{execution.name}: {state}")
    return EXIT_OK if state == S.SUCCESS else EXIT_FAILED


def follow(execution: PipelineExecution, stdout) -> str:
    """Print the run's step output until it finishes; drive a controller inline if none runs."""
    from devops.controller.loop import Controller

    controller: Controller | None = None
    registry_started = False
    tail = LogTail(execution, stdout)
    next_check = 0.0
    try:
        while True:
            now = time.monotonic()
            if controller is None and now >= next_check:
                next_check = now + 1.0
                if not heartbeat.running_controllers(settings.DATA_DIR):
                    controller = Controller()
                    controller.open_wakeups()
                    if publishes_locally(execution):
                        # As runcontroller does: the built-in registry for `pushRemote: false`.
                        from devops.registry.server import start_with_controller

                        registry_started = start_with_controller() is not None
            did = False
            if controller is not None:
                did = controller.tick()
                controller.heartbeat()
            tail.pump()
            row = PipelineExecution.objects.only("execution_state", "abort_requested").get(pk=execution.pk)
            if row.is_finished and not (controller is not None and row.abort_requested):
                tail.pump(final=True)
                return row.execution_state
            if not did:
                if controller is not None:
                    controller.wait(POLL)
                else:
                    time.sleep(POLL)
    finally:
        if controller is not None:
            controller.close_wakeups()
            heartbeat.clear(controller.data_dir)
        if registry_started:
            from devops.registry.server import stop_with_controller

            stop_with_controller()


def publishes_locally(execution: PipelineExecution) -> bool:
    """Whether a step pushes to the built-in registry (publishImageConfig without pushRemote)."""
    return any(
        step["type"].get("kind") == "publishImageConfig" and not step["type"].get("pushRemote")
        for stage in execution.config.get("stages", []) for step in stage.get("steps", [])
    )


class LogTail:
    """Prints new bytes of every step log of one execution, line by line, prefixed."""

    def __init__(self, execution: PipelineExecution, stdout):
        self.execution = execution
        self.stdout = stdout
        self.store = get_log_store()
        self.offsets: dict[tuple[int, int], int] = {}
        self.partial: dict[tuple[int, int], bytes] = {}
        self.reported: set[tuple[int, int]] = set()
        self.store_trouble: str | None = None  # the last log-store error reported (once each)
        self.stage_names = {}

    def _steps(self) -> list[StepStatus]:
        if not self.stage_names:
            self.stage_names = dict(StageStatus.objects.filter(execution=self.execution).values_list("index", "name"))
        return list(StepStatus.objects.filter(execution=self.execution).only(
            "stage_index", "index", "state", "exit_code", "message"))

    def prefix(self, stage: int, step: int) -> str:
        return f"[{stage}.{step} {self.stage_names.get(stage, '?')}] "

    def _emit(self, key: tuple[int, int], text: str) -> None:
        self.stdout.write(self.prefix(*key) + text)

    def pump(self, final: bool = False) -> None:
        for s in self._steps():
            key = (s.stage_index, s.index)
            lk = LogKey(self.execution.name, *key)
            offset = self.offsets.get(key, 0)
            try:
                data = self.store.read(lk, offset)
            except Exception as exc:
                # The log store (S3) is unreachable and this step is not in this
                # machine's spool: say so once and keep following the run; its
                # result must not depend on log trouble.
                data = b""
                if self.store_trouble != type(exc).__name__:
                    self.store_trouble = type(exc).__name__
                    self.stdout.write(f"[slipway] log store unreachable ({type(exc).__name__}); retrying")
            if data:
                self.offsets[key] = offset + len(data)
                buf = self.partial.get(key, b"") + data
                *lines, rest = buf.split(b"\n")
                for line in lines:
                    self._emit(key, line.decode("utf-8", errors="replace"))
                self.partial[key] = rest
            finished = s.state in S.finished() and s.state != S.SKIPPED
            if (finished or final) and self.partial.get(key):
                self._emit(key, self.partial.pop(key).decode("utf-8", errors="replace"))
            if finished and key not in self.reported:
                self.reported.add(key)
                detail = f" (exit {s.exit_code})" if s.exit_code is not None else ""
                why = f": {s.message}" if s.message and s.state != S.SUCCESS else ""
                self._emit(key, f"-- {s.state}{detail}{why}")
        flush = getattr(self.stdout, "flush", None)
        if flush is not None:
            flush()


# --- logs --------------------------------------------------------------------------------


def logs(options: dict[str, Any], stdout, stderr) -> int:
    name = options["execution"]
    execution = PipelineExecution.objects.filter(name=name).first()
    if execution is None:
        stderr.write(f"no execution named {name!r}")
        return EXIT_FAILED
    store = get_log_store()
    stage, step = options.get("stage"), options.get("step")
    if stage is not None or step is not None:
        if stage is None or step is None:
            stderr.write("--stage and --step go together")
            return EXIT_CANNOT_START
        if not StepStatus.objects.filter(execution=execution, stage_index=stage, index=step).exists():
            stderr.write(f"{name} has no step {stage}.{step} (stage indices count the Clone stage)")
            return EXIT_FAILED
        last = _copy_log(store, LogKey(name, stage, step), stdout, stderr)
        return EXIT_FAILED if last is None else EXIT_OK
    stage_names = dict(StageStatus.objects.filter(execution=execution).values_list("index", "name"))
    code = EXIT_OK
    for s in StepStatus.objects.filter(execution=execution).order_by("stage_index", "index"):
        header = f"==> {s.stage_index}.{s.index} {stage_names.get(s.stage_index, '?')} / {s.name}: {s.state}"
        if s.exit_code is not None:
            header += f" (exit {s.exit_code})"
        if s.message and s.state != S.SUCCESS:
            header += f": {s.message}"  # why it failed / was skipped, as the UI shows it
        stdout.write(header + " <==")
        last = _copy_log(store, LogKey(name, s.stage_index, s.index), stdout, stderr)
        if last is None:
            code = EXIT_FAILED
        elif last and not last.endswith(b"\n"):
            _write_bytes(stdout, b"\n")
    return code


def _copy_log(store, key: LogKey, stdout, stderr) -> bytes | None:
    """Stream one log to stdout piece by piece (memory: one piece, whatever its size).

    Returns the last piece written (b"" for an empty log), or None after a
    one-line error (S3 unreachable and not spooled here)."""
    last = b""
    try:
        for piece in store.iter_bytes(key, 0, store.size(key)):
            _write_bytes(stdout, piece)
            last = piece
    except Exception as exc:
        stderr.write(f"log store unreachable: cannot read {key.path}: {type(exc).__name__}: {exc}")
        return None
    return last


def _write_bytes(stdout, data: bytes) -> None:
    """Raw bytes to the real stdout when there is one; decoded text otherwise (tests)."""
    out = getattr(stdout, "_out", stdout)
    buffer = getattr(out, "buffer", None)
    if buffer is not None:
        out.flush()
        buffer.write(data)
        buffer.flush()
    else:
        out.write(data.decode("utf-8", errors="replace"))

