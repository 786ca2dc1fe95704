"""do_finish: an active execution ends (Success, Failed, Aborted, Denied); finished is final."""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from devops.controller.actions.notify import ring_on_commit
from devops.controller.actions.transitions import check_transition, set_condition
from devops.models import ExecutionState as S
from devops.models import Pipeline, PipelineExecution, StageStatus, StepStatus


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
        update_pipeline_status(row, state)
        ring_on_commit(row, state)
    execution.refresh_from_db()
    return True


def update_pipeline_status(execution: PipelineExecution, state: str) -> None:
    """Mirror the latest execution's state on its pipeline (Rancher's lastRunState)."""
    Pipeline.objects.filter(pk=execution.pipeline_id, last_execution_id=execution.name).update(
        last_run_state=state)
