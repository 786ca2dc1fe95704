"""The reconcile loop (DESIGN §4), shaped like healthchecks' `sendalerts`.

`Controller.tick()` runs the small `tick_*` methods; each returns "did
work". The loop sleeps only when none did, and then only until the doorbell
rings (`doorbell.Bell`, plus LISTEN on PostgreSQL) or one second passes.
Tests call the ticks directly. The loop writes no state itself: every
change goes through the `do_*` actions (devops/controller/actions/).

Cost. Every pass reads the active executions through the partial index
`exec_active_idx` (Waiting, Queueing, Building) and the stop requests
through `exec_abort_idx`; finished history is never scanned. A sync that
reports nothing new costs no query (the last report is kept in memory).

Claims (several controllers may run):
- admission is serialised per project: PostgreSQL locks the Project row
  FOR UPDATE; SQLite's IMMEDIATE transactions take the database write lock at
  BEGIN. Inside that lock the controller counts the project's slot holders
  and admits at most `executor-quota - holders` — never more than the quota;
- handing an admitted execution to the engine holds the execution's row
  (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the write lock on SQLite) while
  `engine.run()` runs and the handle is stored; every state write is a
  conditional UPDATE on the expected state, checked by its row count;
- finishing goes through `do_finish`, conditional on the row still being
  active: exactly one controller finishes, cleans up and admits the next.

Nodes. Each controller has a node name (SLIPWAY_NODE_NAME) and a heartbeat
row (ControllerNode, written after every pass, at most once a second).
Before `engine.run()` the execution is claimed for the node
(`claim_for_node`, committed on its own); from then on only that node
starts, syncs and stops it. When the owner's heartbeat is older than
SLIPWAY_NODE_TIMEOUT, another node adopts the run if its engine can still
reach the runner (`engine.can_reach`), else fails it with "runner's node
<name> lost" (a stopped run's slot is freed).

Isolation. Every per-execution unit (admit, start, sync, stop, adopt) runs
in `_unit`: an exception is recorded on that execution (`unit_error`,
`unit_attempts`, `unit_retry_at` with exponential backoff) and the pass goes
on; after UNIT_MAX_ATTEMPTS (actions/retry.py) in a row the execution ends
Failed with the reason. Database errors (a lock, a lost connection) are not
the row's: they are retried next pass without counting. Spooled-log upload
is per log file already (a failed upload keeps that spool for later).

Stops never block: `engine.stop(..., wait=False)` asks the runner and
returns; a runner within its grace period is asked again on a later pass.

Crash safety (kill -9 anywhere): progress is in the database (admission,
handle, step states) and in the runner's own state on disk. A controller that
died after `engine.run()` but before storing the handle leaves the execution
admitted-but-Waiting; the next pass calls `run()` again, which the engine
makes idempotent per execution name, so the same runner is adopted and
nothing runs twice. Building executions are synced as usual after a restart:
a live runner is adopted; a dead one is reported Failed by the engine, and
its reason is stored in `error` and on the Failed step.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from devops.controller.actions import (
    adopt_for_node,
    claim_for_node,
    do_admit,
    do_finish,
    do_queue,
    do_report,
    do_start,
    do_stopped,
    do_unit_failed,
    do_unit_ok,
)
from devops.controller.commit_status import tick_commit_status
from devops.controller.notifications import tick_notify
from devops.controller.polling import tick_poll
from devops.controller.prune import tick_prune
from devops.controller.running import RunLoop, drop_broken_connection
from devops.controller.spec import bare_spec, build_project_spec, build_spec
from devops.controller.status import dt
from devops.doorbell import Bell
from devops.engines.base import (
    PermanentEngineError,
    PipelineEngine,
    RunReport,
    RunSpec,
    TemporaryEngineError,
)
from devops.models import ControllerNode, Pipeline, PipelineExecution, Project
from devops.models import ExecutionState as S

log = logging.getLogger("devops.controller")

# Same list as the condition of the partial index exec_active_idx. SQLite uses
# a partial index only when the query repeats its condition with literal
# values (a bound parameter proves nothing), hence the literal SQL below
# (constants, not input).
ACTIVE = [S.WAITING, S.QUEUEING, S.BUILDING]
ACTIVE_SQL = "execution_state IN ({})".format(", ".join(f"'{s}'" for s in ACTIVE))


def active_executions():
    """Waiting, Queueing and Building executions, read through exec_active_idx."""
    return PipelineExecution.objects.extra(where=[ACTIVE_SQL])


# What a pass reads of each execution: enough to decide, own and isolate its unit.
UNIT_FIELDS = ("id", "name", "project_id", "pipeline_id", "execution_state", "engine", "engine_handle",
               "created", "controller_node", "unit_attempts", "unit_retry_at")

RETRY_AFTER = 2.0  # seconds before retrying an execution whose engine call failed temporarily


def make_engine() -> PipelineEngine:
    from devops.engines.registry import load_engine_class

    cls = load_engine_class(settings.SLIPWAY_ENGINE)
    factory = getattr(cls, "from_settings", None)
    return factory() if callable(factory) else cls()


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def count_slot_holders(project_id: str) -> int:
    """Executions holding one of the project's executor slots.

    Admitted (engine set) and not finished, or stopped while the engine may
    still run them (abort_requested, until the controller stopped them). Two
    index seeks — (project, execution_state) and exec_abort_idx — so the
    count costs O(active), never O(history).
    """
    admitted = PipelineExecution.objects.filter(
        project_id=project_id, execution_state__in=ACTIVE, engine__gt="").count()
    stopping = PipelineExecution.objects.filter(project_id=project_id, abort_requested=True).count()
    return admitted + stopping


class Controller(RunLoop):
    """One reconcile loop. `engine` may be injected (tests); else settings.SLIPWAY_ENGINE.

    `node` (default SLIPWAY_NODE_NAME) names this controller's node: it owns
    the runners it starts. `clock` (default `timezone.now`) dates heartbeats
    and unit retries; tests pass their own to move time without sleeping.
    """

    def __init__(self, engine: PipelineEngine | None = None, *, data_dir: str | os.PathLike | None = None,
                 idle_timeout: float = 1.0, node: str | None = None, node_timeout: float | None = None,
                 clock: Callable[[], datetime] | None = None):
        self.engine = engine if engine is not None else make_engine()
        self.node = node or settings.SLIPWAY_NODE_NAME
        self.node_timeout = float(settings.SLIPWAY_NODE_TIMEOUT if node_timeout is None else node_timeout)
        self.now = clock or timezone.now
        self.engine_name = getattr(self.engine, "name", "") or settings.SLIPWAY_ENGINE
        self.data_dir = data_dir or settings.DATA_DIR
        self.idle_timeout = min(idle_timeout, 1.0)
        self.stopping = False
        self._specs: dict[int, RunSpec] = {}
        self._reports: dict[int, RunReport] = {}
        self._deployed: set[str] = set()
        self._retry_at: dict[int, float] = {}
        self._bell: Bell | None = None
        self._listen: Any = None
        self._last_beat = 0.0
        self._next_log_upload = 0.0
        self._node_row = False  # this node's heartbeat row was written by this instance

    # --- one pass ----------------------------------------------------------------------

    def tick(self) -> bool:
        """One pass over every kind of work; True if anything was done."""
        did = False
        for step in (self.tick_abort, self.tick_admit, self.tick_sync, self.tick_upload_logs):
            if self.stopping:
                break
            did = step() or did
        did = tick_prune(self) or did  # retention of finished runs' directories (controller/prune.py)
        did = tick_poll(self) or did  # generic Git polling: a watched branch moved (controller/polling.py)
        did = tick_commit_status(self) or did  # statuses back to the provider (controller/commit_status.py)
        did = tick_notify(self) or did  # notifications of finished runs (controller/notifications.py)
        return did

    # Spooled logs are a rare fallback (S3 was down); looking for them costs a
    # directory scan, so do it every LOG_UPLOAD_INTERVAL seconds, not every pass.
    LOG_UPLOAD_INTERVAL = 10.0

    def tick_upload_logs(self) -> bool:
        """Ship step logs that runners spooled locally while S3 was unreachable."""
        now = time.monotonic()
        if now < self._next_log_upload:
            return False
        self._next_log_upload = now + self.LOG_UPLOAD_INTERVAL
        from devops.logs import upload_spooled

        try:
            return upload_spooled() > 0
        except Exception:
            log.warning("uploading spooled logs failed; will retry", exc_info=True)
            return False

    def _active(self) -> list[PipelineExecution]:
        return list(
            active_executions().only(*UNIT_FIELDS).order_by("created", "id")
        )

    def has_active(self) -> bool:
        return (active_executions().exists()
                or PipelineExecution.objects.filter(abort_requested=True).exists())

    # --- per-execution units -----------------------------------------------------------

    def _unit(self, e: PipelineExecution, unit: str, fn: Callable[[], bool]) -> bool:
        """Run one unit of work on one execution, isolated from the rest of the pass.

        An exception is recorded on the execution (message, attempts, next
        retry with backoff, `do_unit_failed`), and the pass goes on; after
        UNIT_MAX_ATTEMPTS in a row it ends Failed. A database error is the
        database's, not the row's: logged and retried next pass, not counted.
        """
        if e.unit_retry_at is not None and e.unit_retry_at > self.now():
            return False
        try:
            did = fn()
        except (OperationalError, InterfaceError) as exc:
            log.warning("%s: %s: database error, retrying next pass: %s", e.name, unit, exc)
            drop_broken_connection()
            self._forget(e.pk)
            return False
        except Exception as exc:
            log.exception("%s: %s failed", e.name, unit)
            self._forget(e.pk)
            try:
                return do_unit_failed(e, unit, f"{type(exc).__name__}: {exc}", now=self.now())
            except Exception:
                log.exception("%s: could not record the %s failure", e.name, unit)
                return False
        if e.unit_attempts:
            do_unit_ok(e)
        return did

    def _load(self, pk: int) -> PipelineExecution:
        """The full row with what a RunSpec needs (decrypts the credential: may raise)."""
        return PipelineExecution.objects.select_related("project", "pipeline", "pipeline__credential").get(pk=pk)

    # --- nodes -------------------------------------------------------------------------

    def _mine(self, e: PipelineExecution) -> bool:
        """Whether this node syncs and stops `e` ("" = claimed by nobody yet, e.g. before an upgrade)."""
        return e.controller_node in ("", self.node)

    def _lost_nodes(self, rows: list[PipelineExecution]) -> set[str]:
        """Owners of `rows` (other than this node) whose heartbeat is older than the node timeout.

        One query, and only when some row belongs to another node. A node
        with no heartbeat row at all never ran a pass and counts as lost.
        """
        others = {e.controller_node for e in rows} - {"", self.node}
        if not others:
            return set()
        fresh_after = self.now() - timedelta(seconds=self.node_timeout)
        alive = set(ControllerNode.objects.filter(name__in=others, heartbeat_at__gte=fresh_after)
                    .values_list("name", flat=True))
        return others - alive

    def _adopt(self, e: PipelineExecution) -> bool:
        """A run of a lost node: take it over if this engine reaches its runner, else fail it."""
        row = self._load(e.pk)
        lost = e.controller_node
        spec = self.spec_for(row)
        if self.engine.can_reach(spec, row.engine_handle or {}):
            if adopt_for_node(row, lost, self.node):
                log.info("%s: adopted from lost node %s", row.name, lost)
            return True
        if row.abort_requested and row.is_finished:
            # Stopped already; its runner (if any) is on the lost machine, out of reach.
            done = do_stopped(row)
        else:
            done = do_finish(row, S.FAILED, error=f"runner's node {lost} lost")
            if done:
                log.info("%s: failed, runner's node %s lost", row.name, lost)
        self._forget(e.pk)
        if done:
            self.admit_project(row.project_id)
        return done

    def heartbeat_node(self) -> None:
        """This node's heartbeat row (ControllerNode): one UPDATE, an INSERT the first time."""
        now = self.now()
        if not ControllerNode.objects.filter(name=self.node).update(heartbeat_at=now):
            ControllerNode.objects.get_or_create(name=self.node, defaults={"heartbeat_at": now})
        self._node_row = True

    # --- admission ---------------------------------------------------------------------

    def tick_admit(self) -> bool:
        """New and queued executions: quota decision, then hand admitted ones to the engine."""
        active = self._active()
        did = False
        # Projects with executions not yet admitted (new or queued), oldest first.
        projects: dict[str, PipelineExecution] = {}
        for e in active:
            if e.engine == "" and e.execution_state in (S.WAITING, S.QUEUEING):
                projects.setdefault(e.project_id, e)
        for project_id, oldest in projects.items():
            if self.stopping:
                return did
            # A failure is charged to the oldest waiting execution: the one admission is stuck on.
            did = self._unit(oldest, "admit", lambda p=project_id: self.admit_project(p)) or did
        # Re-read: admission above changed rows; a crash may have left admitted ones.
        admitted = [e for e in self._active() if e.execution_state == S.WAITING and e.engine]
        lost = self._lost_nodes(admitted)
        for e in admitted:
            if self.stopping:
                break
            if self._retry_at.get(e.pk, 0) > time.monotonic():
                continue
            if e.controller_node in lost:
                did = self._unit(e, "adopt", lambda e=e: self._adopt(e)) or did
            elif self._mine(e):
                did = self._unit(e, "start", lambda pk=e.pk: self.start(pk)) or did
        return did

    def admit_project(self, project_id: str) -> bool:
        """Admit the project's oldest unadmitted executions up to its quota; queue the rest."""
        did = False
        with transaction.atomic():
            if _postgres():
                # Serialise admission per project across controllers.
                list(Project.objects.select_for_update().filter(pk=project_id).values_list("pk"))
            try:
                quota = max(0, int(Project(pk=project_id).setting("executor-quota") or 2))
            except ValueError:
                quota = 2
            holders = count_slot_holders(project_id)
            candidates = list(
                PipelineExecution.objects.filter(
                    project_id=project_id, execution_state__in=[S.WAITING, S.QUEUEING], engine="")
                .only("id", "execution_state", "conditions", "pipeline_id", "project_id", "name")
                .order_by("created", "id")
            )
            free = max(0, quota - holders)
            for e in candidates[:free]:
                if do_admit(e, self.engine_name):
                    did = True
                    log.info("admitted %s (%d/%d slots)", e.name, holders + 1, quota)
                    holders += 1
            for e in candidates[free:]:
                if e.execution_state == S.WAITING and do_queue(e):
                    did = True
        return did

    def _start_admitted(self, project_id: str) -> None:
        for e in (PipelineExecution.objects.filter(project_id=project_id, execution_state=S.WAITING)
                  .exclude(engine="").only(*UNIT_FIELDS).order_by("created", "id")):
            if self.stopping:
                return
            if self._mine(e):
                self._unit(e, "start", lambda pk=e.pk: self.start(pk))

    def start(self, pk: int) -> bool:
        """Hand one admitted execution to the engine: deploy, pre_check, run, store the handle."""
        if not self._node_row:
            # Before this node owns anything, other nodes must see it alive
            # (a node without a heartbeat row counts as lost).
            self.heartbeat_node()
        if not claim_for_node(PipelineExecution(pk=pk), self.node):
            return False  # another node owns it, or it was stopped meanwhile
        with transaction.atomic():
            qs = PipelineExecution.objects.filter(pk=pk, execution_state=S.WAITING).exclude(engine="")
            if _postgres():
                qs = qs.select_for_update(skip_locked=True, of=("self",))
            row = qs.select_related("project", "pipeline", "pipeline__credential").first()
            if row is None:
                return False  # another controller has it, or it was stopped
            spec = self.spec_for(row)
            try:
                if row.project_id not in self._deployed:
                    self.engine.deploy(build_project_spec(row.project))
                    self._deployed.add(row.project_id)
                if not self.engine.pre_check(spec):
                    self._retry_at[pk] = time.monotonic() + RETRY_AFTER
                    return False
                # Idempotent per execution name: after a crash right here the
                # same runner is returned, never a second one.
                log.debug("handing %s to the engine (pid %d)", row.name, os.getpid())
                handle = self.engine.run(spec) or {}
            except TemporaryEngineError as exc:
                log.warning("%s: engine not ready: %s", row.name, exc)
                self._retry_at[pk] = time.monotonic() + RETRY_AFTER
                return False
            except PermanentEngineError as exc:
                do_finish(row, S.FAILED, error=str(exc))
                self._forget(pk)
                return True
            # Any other exception (an engine bug, an unreadable row) is the
            # unit's: recorded on the row and retried with backoff (_unit).
            started = do_start(row, handle, node=self.node, engine_name=self.engine_name)
            if started:
                log.info("started %s", row.name)
        self._retry_at.pop(pk, None)
        return started

    # --- sync --------------------------------------------------------------------------

    def tick_sync(self) -> bool:
        """Building executions of this node: pull the engine's report; copy changes into the rows.

        Runs of another node are left to it while its heartbeat is fresh; a
        lost node's are adopted (if this engine reaches them) or Failed.
        """
        did = False
        building = [e for e in self._active() if e.execution_state == S.BUILDING]
        lost = self._lost_nodes(building)
        for e in building:
            if self.stopping:
                break
            if e.controller_node in lost:
                did = self._unit(e, "adopt", lambda e=e: self._adopt(e)) or did
            elif self._mine(e):
                did = self._unit(e, "sync", lambda e=e: self.sync(e)) or did
        return did

    def sync(self, e: PipelineExecution) -> bool:
        spec = self._specs.get(e.pk)
        if spec is None:
            spec = self.spec_for(self._load(e.pk))
        try:
            report = self.engine.sync(spec, e.engine_handle or {})
        except TemporaryEngineError as exc:
            log.warning("%s: sync: %s", e.name, exc)
            return False
        except PermanentEngineError as exc:
            report = RunReport(state=S.FAILED, error=str(exc), ended=time.time())
        if report.state == S.SKIPPED:  # every stage skipped: the run itself succeeded
            report = RunReport(**{**report.__dict__, "state": S.SUCCESS})
        if report == self._reports.get(e.pk):
            return False  # nothing new: no query at all
        if not do_report(e, report):
            self._forget(e.pk)
            return False  # stopped or finished meanwhile (another controller, a user)
        if report.state not in S.finished():
            # Remembered only once written: a failed write is retried with the same report.
            self._reports[e.pk] = report
            return True
        if do_finish(e, report.state, error=report.error, ended=dt(report.ended)):
            log.info("finished %s: %s%s", e.name, report.state, f" ({report.error})" if report.error else "")
            try:
                self._record_node(e, report.node)
                # The freed slot first: the next queued run of the project starts
                # before this one's workspace is removed (cleanup can wait; users can't).
                if self.admit_project(e.project_id):
                    self._start_admitted(e.project_id)
            finally:
                self._cleanup(e, spec)
        self._forget(e.pk)
        return True

    def _record_node(self, row: PipelineExecution, node: str) -> None:
        """Newest-first nodes of recent runs (cache affinity, DESIGN §6)."""
        if not node:
            return
        p = Pipeline.objects.only("execution_scheduled_info").get(pk=row.pipeline_id)
        nodes = [node] + [n for n in (p.execution_scheduled_info or []) if n != node]
        Pipeline.objects.filter(pk=row.pipeline_id).update(execution_scheduled_info=nodes[:10])

    def _cleanup(self, row: PipelineExecution, spec: RunSpec) -> None:
        try:
            self.engine.cleanup(spec, row.engine_handle or {})
        except Exception:  # cleanup is idempotent; a later restart does not retry it, so log loudly
            log.exception("%s: cleanup failed", row.name)

    # --- abort -------------------------------------------------------------------------

    def tick_abort(self) -> bool:
        """Stopped executions the engine may still run: engine.stop, cleanup, free the slot.

        Never blocks: `engine.stop(wait=False)` asks the runner to stop and
        returns; a runner still within its grace period is asked again on a
        later pass (the slot stays taken until then).
        """
        did = False
        rows = list(PipelineExecution.objects.filter(abort_requested=True).only(*UNIT_FIELDS, "abort_requested"))
        lost = self._lost_nodes(rows)
        for row in rows:
            if self.stopping:
                break
            if row.controller_node in lost:
                did = self._unit(row, "adopt", lambda row=row: self._adopt(row)) or did
            elif self._mine(row):
                did = self._unit(row, "stop", lambda row=row: self.stop(row)) or did
        return did

    def stop(self, e: PipelineExecution) -> bool:
        try:
            row = self._load(e.pk)
            spec = self._specs.get(row.pk) or build_spec(row)
        except Exception as exc:
            # An unreadable row (how it came to be Failed, see do_unit_failed):
            # its runner is still stopped, by name and handle.
            log.warning("%s: stopping by name only: %s", e.name, exc)
            row = PipelineExecution.objects.only(*UNIT_FIELDS, "run", "abort_requested").get(pk=e.pk)
            spec = bare_spec(row)
        try:
            # The handle may be {} if a controller died between run() and
            # storing it: the engine then finds the run by its name.
            if self.engine.stop(spec, row.engine_handle or {}, wait=False) is False:
                return False  # asked; still stopping: look again next pass
        except TemporaryEngineError as exc:
            log.warning("%s: stop: %s", row.name, exc)
            return False
        except PermanentEngineError:  # the run is Aborted anyway; free its slot
            log.exception("%s: stop failed", row.name)
        self._cleanup(row, spec)
        self._forget(row.pk)
        if do_stopped(row):
            log.info("stopped %s", row.name)
            self.admit_project(row.project_id)
            return True
        return False

    # --- helpers -----------------------------------------------------------------------

    def spec_for(self, row: PipelineExecution) -> RunSpec:
        spec = self._specs.get(row.pk)
        if spec is None:
            spec = self._specs[row.pk] = build_spec(row)
        return spec

    def _forget(self, pk: int) -> None:
        self._specs.pop(pk, None)
        self._reports.pop(pk, None)
        self._retry_at.pop(pk, None)
