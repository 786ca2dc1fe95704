"""The execution-level engine contract (DESIGN §5): what the controller relies on.

Engines see plain data only (`ProjectSpec`, `RunSpec`, `PipelineConfig`),
never Django models: the controller converts models to specs and writes the
returned `RunReport` back. That keeps engines testable without a database and
lets the Jenkins engine live in another process or machine.

Call order, per execution, by the controller (`devops/controller/loop.py`):
    deploy(project)              before the project's first run in this controller
                                 process; `project` is a ProjectSpec. Idempotent:
                                 called again after every controller restart.
    pre_check(spec) -> bool      until True (False = "not ready yet, ask again")
    run(spec) -> handle          IDEMPOTENT PER EXECUTION (`spec.execution`): a second
                                 call, after a controller crash between run() and
                                 storing the handle, or from another controller, returns
                                 the same run's handle and starts nothing. The handle
                                 (plain JSON) is persisted on the execution.
    sync(spec, handle) -> report repeatedly while Building, from ANY controller process
                                 (a restarted one, or one of several on PostgreSQL):
                                 cheap (a file read / one bounded API call; no waiting),
                                 starts and stops nothing, and concurrent calls for one
                                 execution never conflict. `report.node` names the machine
                                 the run lives on when the engine knows it.
    stop(spec, handle, wait=False) -> bool
                                 on abort; idempotent; may be called after the run ended;
                                 wait=True (the default, for scripts) returns once stopped; with
                                 wait=False (the controller) it must not block: it asks the run
                                 to stop and returns True once it is stopped, False to be
                                 called again on a later pass (None counts as True)
    can_reach(spec, handle)      whether this instance can see and stop the run (a controller
                                 adopting the runs of a lost node asks; default True)
    cleanup(spec, handle)        once after the execution finished; idempotent

A re-run is a NEW execution (`do_rerun`), so it goes through run() again under
its own name: there is no engine-level rerun.
    stored_runs() / prune(entry) what a finished run left on this machine, and deleting it after the
                                 retention (devops/controller/prune.py decides which); idempotent

Exceptions: `TemporaryEngineError` = try again next pass; `PermanentEngineError`
= the execution fails with the message. A failing step is a result in the
report, never an exception.

Thread-safety: one engine instance serves one controller process; methods may
be called from one thread at a time.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from devops.pipeline.config import PipelineConfig
from devops.scm.git import Auth as GitAuth  # how to clone; values are secrets


class EngineError(Exception):
    pass


class TemporaryEngineError(EngineError):
    """Try again on a later pass (engine unreachable, resource not ready)."""


class PermanentEngineError(EngineError):
    """Give up: the execution is Failed with this message."""


# Events whose code Slipway does not trust: a pull request may come from a fork.
UNTRUSTED_EVENTS = frozenset({"pull_request"})

# The project Secret that holds its deploy target: key `kubeconfig` (a kubeconfig file),
# optional key `namespace` (else the setting `deploy-namespace`, else "default").
DEPLOY_TARGET_SECRET = "deploy-target"


@dataclass(frozen=True)
class ProjectSpec:
    """What `deploy()` gets: one project, as plain data (built by devops.controller.spec).

    The resources an engine keeps per project (Jenkins: the data plane in the
    project's pipeline namespace) are derived from this alone.
    """

    project_id: str           # e.g. "p-abcde"
    cluster_id: str           # Rancher's cluster of the project, e.g. "local"
    namespace: str            # the project's pipeline namespace: "<project_id>-pipeline" (Rancher's)
    # Project PipelineSettings (effective values), e.g. "executor-quota".
    settings: dict[str, str] = field(default_factory=dict)
    # The project's secrets: name -> key -> value. Values are secret: never log them.
    secrets: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    # The project's namespaces (setting `namespaces`): the Jenkins service account may act in
    # each; the data plane removes its bindings from namespaces no longer listed.
    namespaces: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunSpec:
    """Everything an engine needs to run one execution, as plain data."""

    execution: str            # PipelineExecution.name, e.g. "p-abcde-7"
    project_id: str
    pipeline_id: str          # Pipeline.name
    run: int
    repository_url: str
    commit: str
    branch: str
    ref: str
    event: str                # push | pull_request | tag | "" (manual)
    trigger_type: str
    config: PipelineConfig
    # CICD_* and other values every step gets. Untrusted text (branch names,
    # commit messages) travels here as environment values, never as shell text.
    env: dict[str, str] = field(default_factory=dict)
    # envFrom resolution: secret name -> key -> value (already dropped on
    # pull_request events by the controller).
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    git_auth: GitAuth = field(default_factory=GitAuth)
    # Values to mask in logs (secrets, tokens, registry passwords).
    mask: tuple[str, ...] = ()
    # Project PipelineSettings (effective values), e.g. "executor-memory-limit".
    settings: dict[str, str] = field(default_factory=dict)
    # Registry credentials for pushes/pulls: host -> (username, password).
    registry_auth: dict[str, tuple[str, str]] = field(default_factory=dict)
    # The project's deploy target (its Secret `deploy-target`, DEPLOY_TARGET_SECRET): a kubeconfig
    # and the default namespace of deploy steps. Empty for untrusted runs and when not configured.
    deploy_kubeconfig: str = field(default="", repr=False)
    deploy_namespace: str = ""
    # The pipeline's executionScheduledInfo: nodes of its recent runs, newest first (DESIGN §6;
    # the Jenkins engine's agent pod prefers them, so its hostPath caches are warm).
    scheduled_nodes: tuple[str, ...] = ()

    @property
    def trusted(self) -> bool:
        """False for runs of code from outside the project (`event` in UNTRUSTED_EVENTS: pull requests).

        The controller leaves out envFrom secrets and the project's registry
        credentials for them (controller/spec.py); engines also refuse their
        pushes to remote registries and never publish their caches (restoring is fine).
        """
        return self.event not in UNTRUSTED_EVENTS


@dataclass(frozen=True)
class StepReport:
    stage: int
    step: int
    state: str                # ExecutionState values
    started: float | None = None   # unix time
    ended: float | None = None
    exit_code: int | None = None
    message: str = ""
    runtime: str = ""
    image_digest: str = ""
    log_size: int = 0
    handle: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunReport:
    """What sync() saw. `state` is the execution state (Building until finished)."""

    state: str
    steps: tuple[StepReport, ...] = ()
    started: float | None = None
    ended: float | None = None
    error: str = ""
    node: str = ""


class PipelineEngine:
    """Base class; see the module docstring for the contract."""

    name = "base"

    def deploy(self, project: ProjectSpec) -> None:
        return None

    def pre_check(self, spec: RunSpec) -> bool:
        return True

    def run(self, spec: RunSpec) -> dict[str, Any]:
        raise NotImplementedError

    def stop(self, spec: RunSpec, handle: dict[str, Any], *, wait: bool = True) -> bool | None:
        raise NotImplementedError

    def can_reach(self, spec: RunSpec, handle: dict[str, Any]) -> bool:
        return True

    def sync(self, spec: RunSpec, handle: dict[str, Any]) -> RunReport:
        raise NotImplementedError

    def cleanup(self, spec: RunSpec, handle: dict[str, Any]) -> None:
        return None

    def stored_runs(self) -> list[tuple[str, str, float]]:
        """(entry, execution name, last change as unix time) of every run kept on this machine."""
        return []

    def prune(self, entry: str) -> bool:
        """Delete what `entry` (from stored_runs) holds; False while its runner still runs."""
        return False
