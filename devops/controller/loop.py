"""The reconcile loop (DESIGN §4), shaped like healthchecks' `sendalerts`.

`Controller.tick()` runs the small `tick_*` methods; each returns "did
work". The loop sleeps only when none did, and then only until the doorbell
rings (`doorbell.Bell`, plus LISTEN on PostgreSQL) or one second passes.
Tests call the ticks directly.

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
import select
import signal
import time
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from devops.controller import heartbeat
from devops.controller.actions import NOTIFY_CHANNEL, announce_on_commit, do_finish, set_condition
from devops.controller.prune import tick_prune
from devops.controller.spec import build_spec
from devops.controller.status import copy_report, dt
from devops.doorbell import Bell
from devops.engines.base import (
    PermanentEngineError,
    PipelineEngine,
    RunReport,
    RunSpec,
    TemporaryEngineError,
)
from devops.models import ExecutionState as S
from devops.models import Pipeline, PipelineExecution, Project

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


class Controller:
    """One reconcile loop. `engine` may be injected (tests); else settings.SLIPWAY_ENGINE."""

    def __init__(self, engine: PipelineEngine | None = None, *, data_dir: str | os.PathLike | None = None,
                 idle_timeout: float = 1.0):
        self.engine = engine if engine is not None else make_engine()
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

    # --- one pass ----------------------------------------------------------------------

    def tick(self) -> bool:
        """One pass over every kind of work; True if anything was done."""
        did = False
        for step in (self.tick_abort, self.tick_admit, self.tick_sync, self.tick_upload_logs):
            if self.stopping:
                break
            did = step() or did
        did = tick_prune(self) or did  # retention of finished runs' directories (controller/prune.py)
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
            active_executions()
            .only("id", "name", "project_id", "pipeline_id", "execution_state", "engine", "engine_handle",
                  "created")
            .order_by("created", "id")
        )

    def has_active(self) -> bool:
        return (active_executions().exists()
                or PipelineExecution.objects.filter(abort_requested=True).exists())

    # --- admission ---------------------------------------------------------------------

    def tick_admit(self) -> bool:
        """New and queued executions: quota decision, then hand admitted ones to the engine."""
        active = self._active()
        did = False
        # Projects with executions not yet admitted (new or queued), oldest first.
        projects = list(dict.fromkeys(
            e.project_id for e in active if e.engine == "" and e.execution_state in (S.WAITING, S.QUEUEING)
        ))
        for project_id in projects:
            if self.stopping:
                return did
            did = self.admit_project(project_id) or did
        # Re-read: admission above changed rows; a crash may have left admitted ones.
        admitted = [e.pk for e in self._active() if e.execution_state == S.WAITING and e.engine]
        for pk in admitted:
            if self.stopping:
                break
            if self._retry_at.get(pk, 0) > time.monotonic():
                continue
            did = self.start(pk) or did
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
                n = PipelineExecution.objects.filter(pk=e.pk, execution_state=e.execution_state, engine="").update(
                    execution_state=S.WAITING, engine=self.engine_name,
                    conditions=set_condition(e.conditions, "Initialized", "Unknown", "Admitted",
                                             "within the executor quota"),
                )
                if n:
                    did = True
                    announce_on_commit(e, S.WAITING)
                    log.info("admitted %s (%d/%d slots)", e.name, holders + 1, quota)
                    holders += 1
            for e in candidates[free:]:
                if e.execution_state == S.WAITING:
                    n = PipelineExecution.objects.filter(pk=e.pk, execution_state=S.WAITING, engine="").update(
                        execution_state=S.QUEUEING)
                    if n:
                        did = True
                        announce_on_commit(e, S.QUEUEING)
                        Pipeline.objects.filter(pk=e.pipeline_id, last_execution_id=e.name).update(
                            last_run_state=S.QUEUEING)
        return did

    def _start_admitted(self, project_id: str) -> None:
        for pk in (PipelineExecution.objects.filter(project_id=project_id, execution_state=S.WAITING)
                   .exclude(engine="").order_by("created", "id").values_list("pk", flat=True)):
            if self.stopping:
                return
            self.start(pk)

    def start(self, pk: int) -> bool:
        """Hand one admitted execution to the engine: deploy, pre_check, run, store the handle."""
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
                    self.engine.deploy(row.project_id)
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
            except Exception:  # an engine bug must not kill the loop; retry later
                log.exception("%s: engine.run failed", row.name)
                self._retry_at[pk] = time.monotonic() + RETRY_AFTER
                return False
            now = timezone.now()
            n = PipelineExecution.objects.filter(pk=pk, execution_state=S.WAITING).update(
                execution_state=S.BUILDING, engine_handle=handle, started=now,
                conditions=set_condition(row.conditions, "Initialized", "True", "Running",
                                         f"handed to the {self.engine_name} engine"),
            )
            if n:
                Pipeline.objects.filter(pk=row.pipeline_id, last_execution_id=row.name).update(
                    last_run_state=S.BUILDING, last_started=now)
                announce_on_commit(row, S.BUILDING)
                log.info("started %s", row.name)
        self._retry_at.pop(pk, None)
        return bool(n)

    # --- sync --------------------------------------------------------------------------

    def tick_sync(self) -> bool:
        """Building executions: pull the engine's report; copy changes into the rows."""
        did = False
        for e in self._active():
            if self.stopping:
                break
            if e.execution_state == S.BUILDING:
                did = self.sync(e) or did
        return did

    def sync(self, e: PipelineExecution) -> bool:
        spec = self._specs.get(e.pk)
        if spec is None:
            full = PipelineExecution.objects.select_related("project", "pipeline", "pipeline__credential").get(pk=e.pk)
            spec = self.spec_for(full)
        try:
            report = self.engine.sync(spec, e.engine_handle or {})
        except TemporaryEngineError as exc:
            log.warning("%s: sync: %s", e.name, exc)
            return False
        except PermanentEngineError as exc:
            report = RunReport(state=S.FAILED, error=str(exc), ended=time.time())
        except Exception:  # an engine bug: keep syncing the others, retry this one next pass
            log.exception("%s: engine.sync failed", e.name)
            return False
        if report.state == S.SKIPPED:  # every stage skipped: the run itself succeeded
            report = RunReport(**{**report.__dict__, "state": S.SUCCESS})
        if report == self._reports.get(e.pk):
            return False  # nothing new: no query at all
        finished = report.state in S.finished()
        with transaction.atomic():
            qs = PipelineExecution.objects.filter(pk=e.pk, execution_state=S.BUILDING)
            if _postgres():
                qs = qs.select_for_update(of=("self",))
            row = qs.first()
            if row is None:
                self._forget(e.pk)
                return False  # stopped or finished meanwhile (another controller, a user)
            copy_report(row, report)
            if not finished:  # do_finish announces the end itself
                announce_on_commit(row, S.BUILDING)
        self._reports[e.pk] = report
        if finished:
            if do_finish(row, report.state, error=report.error, ended=dt(report.ended)):
                log.info("finished %s: %s%s", row.name, report.state, f" ({report.error})" if report.error else "")
                self._record_node(row, report.node)
                # The freed slot first: the next queued run of the project starts
                # before this one's workspace is removed (cleanup can wait; users can't).
                if self.admit_project(row.project_id):
                    self._start_admitted(row.project_id)
                self._cleanup(row, spec)
            self._forget(e.pk)
        return True

    def _final_steps(self, row: PipelineExecution, spec: RunSpec) -> None:
        """After a stop: the steps' last states as the engine saw them (done, Aborted, never ran)."""
        if not row.engine_handle:
            return
        try:
            report = self.engine.sync(spec, row.engine_handle)
        except Exception:  # only detail is lost: the execution is Aborted already
            log.warning("%s: no final step states after stop", row.name, exc_info=True)
            return
        if report.state not in S.finished():
            return  # the engine has not seen the end yet: keep what do_stop wrote
        with transaction.atomic():
            copy_report(row, report)

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
        """Stopped executions the engine may still run: engine.stop, cleanup, free the slot."""
        did = False
        rows = list(
            PipelineExecution.objects.filter(abort_requested=True)
            .select_related("project", "pipeline", "pipeline__credential")
        )
        for row in rows:
            if self.stopping:
                break
            spec = self._specs.get(row.pk) or build_spec(row)
            try:
                # The handle may be {} if a controller died between run() and
                # storing it: the engine then finds the run by its name.
                self.engine.stop(spec, row.engine_handle or {})
            except TemporaryEngineError as exc:
                log.warning("%s: stop: %s", row.name, exc)
                continue
            except Exception:  # permanent or a bug: the run is Aborted anyway; free its slot
                log.exception("%s: stop failed", row.name)
            self._final_steps(row, spec)
            self._cleanup(row, spec)
            if PipelineExecution.objects.filter(pk=row.pk, abort_requested=True).update(abort_requested=False):
                did = True
                log.info("stopped %s", row.name)
                self.admit_project(row.project_id)
            self._forget(row.pk)
        return did

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

    # --- the loop ----------------------------------------------------------------------

    def install_signal_handlers(self) -> dict[int, Any]:
        """SIGTERM/SIGINT set `stopping`; returns the previous handlers (for `restore_signal_handlers`)."""
        def stop(signum, frame):
            log.info("signal %d: finishing the current unit, then exiting", signum)
            self.stopping = True

        return {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}

    @staticmethod
    def restore_signal_handlers(previous: dict[int, Any]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def heartbeat(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_beat >= 1.0:
            heartbeat.beat(self.data_dir, engine=self.engine_name)
            self._last_beat = now

    def open_wakeups(self) -> None:
        if self._bell is None:
            self._bell = Bell(self.data_dir)
        if self._listen is None and _postgres():
            try:
                self._listen = _listen_connection()
            except Exception:
                log.warning("LISTEN unavailable; relying on the local doorbell", exc_info=True)

    def close_wakeups(self) -> None:
        if self._bell is not None:
            self._bell.close()
            self._bell = None
        if self._listen is not None:
            self._listen.close()
            self._listen = None

    def wait(self, timeout: float | None = None) -> bool:
        """Sleep until a wake-up (doorbell or NOTIFY) or `timeout` (≤ 1 s); True if woken."""
        timeout = self.idle_timeout if timeout is None else min(timeout, 1.0)
        self.open_wakeups()
        sources: list[Any] = [self._bell]
        if self._listen is not None:
            sources.append(self._listen.pgconn.socket)
        try:
            ready, _, _ = select.select(sources, [], [], timeout)
        except InterruptedError:
            return False
        woken = False
        if self._bell in ready:
            woken = self._bell.drain() > 0 or woken
        if self._listen is not None:
            try:
                woken = any(True for _ in self._listen.notifies(timeout=0)) or woken
            except Exception:
                log.warning("LISTEN connection lost", exc_info=True)
                self._listen.close()
                self._listen = None
        return woken

    def run_forever(self, *, once: bool = False, until_idle: bool = False) -> None:
        """The loop: tick; sleep only when no tick did work. Exits 0 on SIGTERM after the current unit."""
        self.open_wakeups()
        self.heartbeat(force=True)
        try:
            while not self.stopping:
                try:
                    did = self.tick()
                except Exception:
                    # A database hiccup or a bug in one unit must not end the
                    # loop; the next pass retries from the stored state.
                    log.exception("controller pass failed")
                    did = False
                    connection.close_if_unusable_or_obsolete()
                self.heartbeat()
                if once or self.stopping:
                    break
                if until_idle and not did and not self.has_active():
                    break
                if not did:
                    self.wait()
        finally:
            self.close_wakeups()
            heartbeat.clear(self.data_dir)


def _listen_connection():
    """A dedicated autocommit psycopg connection that LISTENs for the do_* NOTIFYs."""
    import psycopg

    db = connection.settings_dict  # the test database's name under pytest, too
    params = {
        "dbname": db.get("NAME") or "", "user": db.get("USER") or "", "password": db.get("PASSWORD") or "",
        "host": db.get("HOST") or "", "port": str(db.get("PORT") or ""),
    }
    conn = psycopg.connect(**{k: v for k, v in params.items() if v}, autocommit=True)
    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
    return conn
