"""do_stop (a user's abort) and do_stopped (the controller has stopped the runner)."""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from devops.controller.actions.finish import update_pipeline_status
from devops.controller.actions.notify import ring_on_commit
from devops.controller.actions.transitions import check_transition, set_condition
from devops.models import ExecutionState as S
from devops.models import PipelineExecution, StageStatus, StepStatus


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
        update_pipeline_status(row, S.ABORTED)
        ring_on_commit(row, S.ABORTED)
    execution.refresh_from_db()
    return True


def do_stopped(execution: PipelineExecution) -> bool:
    """The runner of a stopped execution is stopped (or cannot be): `abort_requested` clears, its slot frees.

    The execution's states were final since `do_stop` and stay as they are.
    Returns whether this call cleared it (two controllers: exactly one).
    """
    n = PipelineExecution.objects.filter(pk=execution.pk, abort_requested=True).update(abort_requested=False)
    if n:
        ring_on_commit()
    return bool(n)
