"""Engine reports -> rows: step states copied in, stage states derived from their steps.

Called by the controller inside its transaction on the execution row.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db import connection

from devops.engines.base import RunReport
from devops.models import ExecutionState as S
from devops.models import PipelineExecution, StageStatus, StepStatus


def dt(ts: float | None) -> datetime | None:
    """Unix time (as engines report it) -> an aware datetime."""
    return None if ts is None else datetime.fromtimestamp(ts, tz=UTC)


def copy_report(row: PipelineExecution, report: RunReport) -> None:
    """Copy an engine report's step states into the rows; stage states follow from their steps."""
    steps = {(s.stage_index, s.index): s for s in StepStatus.objects.filter(execution=row)}
    fields = ("state", "started", "ended", "exit_code", "message", "runtime", "image_digest",
              "log_size", "handle", "attempts")
    changed: list[StepStatus] = []
    for r in report.steps:
        s = steps.get((r.stage, r.step))
        if s is None:
            continue
        before = {f: getattr(s, f) for f in fields}
        if s.state != r.state and r.state == S.BUILDING:
            s.attempts += 1
        s.state = r.state
        s.started = dt(r.started) or s.started
        s.ended = dt(r.ended) or s.ended
        s.exit_code = r.exit_code
        s.message = r.message or (report.error if r.state == S.FAILED and report.error else s.message)
        s.runtime = r.runtime or s.runtime
        s.image_digest = r.image_digest or s.image_digest
        s.log_size = r.log_size
        s.handle = r.handle or s.handle
        if any(getattr(s, f) != before[f] for f in fields):
            changed.append(s)
    save_rows(StepStatus, changed, fields)
    by_stage: dict[int, list[StepStatus]] = {}
    for s in steps.values():
        by_stage.setdefault(s.stage_index, []).append(s)
    stages_changed = []
    for st in StageStatus.objects.filter(execution=row):
        state, started, ended = stage_state(by_stage.get(st.index, []))
        if (st.state, st.started, st.ended) != (state, started, ended):
            st.state, st.started, st.ended = state, started, ended
            stages_changed.append(st)
    save_rows(StageStatus, stages_changed, ("state", "started", "ended"))
    updates: dict[str, Any] = {}
    if report.node and report.node != row.node:
        updates["node"] = report.node
    if report.started and row.started is None:
        updates["started"] = dt(report.started)
    if updates:
        PipelineExecution.objects.filter(pk=row.pk).update(**updates)


def save_rows(model, objs: list, fields: tuple[str, ...]) -> None:
    """Write `fields` of several rows with one prepared UPDATE run for each (executemany).

    A finishing runner changes a dozen steps at once; Django's bulk_update
    builds CASE expressions over every row and column, which costs more CPU
    than the writes themselves.
    """
    if not objs:
        return
    meta = model._meta
    cols = [meta.get_field(f) for f in fields]
    qn = connection.ops.quote_name
    sql = (f"UPDATE {qn(meta.db_table)} SET " + ", ".join(f"{qn(c.column)} = %s" for c in cols)
           + f" WHERE {qn(meta.pk.column)} = %s")
    params = [[c.get_db_prep_save(getattr(o, c.attname), connection) for c in cols] + [o.pk] for o in objs]
    with connection.cursor() as cur:
        cur.executemany(sql, params)


def stage_state(steps: list[StepStatus]) -> tuple[str, datetime | None, datetime | None]:
    """A stage's state from its steps' (steps of a stage run in parallel)."""
    if not steps:
        return S.SKIPPED, None, None
    states = {s.state for s in steps}
    started = min((s.started for s in steps if s.started), default=None)
    ends = [s.ended for s in steps if s.ended]
    if states <= {S.SKIPPED}:
        return S.SKIPPED, None, None
    if S.BUILDING in states or (S.WAITING in states and started is not None):
        return S.BUILDING, started, None
    if S.WAITING in states:
        return S.WAITING, None, None
    for final in (S.FAILED, S.ABORTED, S.DENIED):
        if final in states:
            return final, started, max(ends, default=None)
    return S.SUCCESS, started, max(ends, default=None)
