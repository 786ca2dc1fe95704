"""do_report: an engine's report copied into the step rows; stage states follow from their steps."""
from __future__ import annotations

from typing import Any

from django.db import transaction

from devops.controller.actions.notify import announce_on_commit
from devops.controller.actions.transitions import check_step_transition, is_final
from devops.controller.status import dt, stage_state
from devops.engines.base import RunReport
from devops.models import ExecutionState as S
from devops.models import PipelineExecution, StageStatus, StepStatus

STEP_FIELDS = ("state", "started", "ended", "exit_code", "message", "runtime", "image_digest",
               "log_size", "handle", "attempts")


def do_report(execution: PipelineExecution, report: RunReport) -> bool:
    """Copy `report`'s step states into the rows of a Building execution; True if it was Building.

    Holds the execution's row while copying, so a concurrent stop or finish
    either happens before (then nothing is copied: a finished execution is
    never changed again) or after. A step already in a final state keeps
    it, and a step only moves along the transition table. The execution's
    own end is `do_finish`'s, called by the controller after this.
    """
    with transaction.atomic():
        row = (PipelineExecution.objects.select_for_update(of=("self",))
               .filter(pk=execution.pk, execution_state=S.BUILDING)
               .only("id", "name", "project_id", "node", "started").first())
        if row is None:
            return False
        steps = {(s.stage_index, s.index): s for s in StepStatus.objects.filter(execution=row)}
        changed = [s for r in report.steps if (s := steps.get((r.stage, r.step))) is not None
                   and _copy_step(s, r, report)]
        if changed:
            StepStatus.objects.bulk_update(changed, STEP_FIELDS)
        by_stage: dict[int, list[StepStatus]] = {}
        for s in steps.values():
            by_stage.setdefault(s.stage_index, []).append(s)
        stages_changed = []
        for st in StageStatus.objects.filter(execution=row):
            state, started, ended = stage_state(by_stage.get(st.index, []))
            if (st.state, st.started, st.ended) != (state, started, ended) and not is_final(st.state) \
                    and check_step_transition(st.state, state):
                st.state, st.started, st.ended = state, started, ended
                stages_changed.append(st)
        if stages_changed:
            StageStatus.objects.bulk_update(stages_changed, ("state", "started", "ended"))
        updates: dict[str, Any] = {}
        if report.node and report.node != row.node:
            updates["node"] = report.node
        if report.started and row.started is None:
            updates["started"] = dt(report.started)
        if updates:
            PipelineExecution.objects.filter(pk=row.pk).update(**updates)
        if report.state not in S.finished():  # do_finish announces the end itself
            announce_on_commit(row, S.BUILDING)
    return True


def _copy_step(s: StepStatus, r, report: RunReport) -> bool:
    """Copy one step report into its row (unless the move is not allowed); True if anything changed."""
    if is_final(s.state) or not check_step_transition(s.state, r.state):
        return False
    before = {f: getattr(s, f) for f in STEP_FIELDS}
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
    return any(getattr(s, f) != before[f] for f in STEP_FIELDS)
