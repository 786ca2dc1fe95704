"""do_admit / do_queue: the quota decision's two outcomes (the controller decides, these write)."""
from __future__ import annotations

from devops.controller.actions.finish import update_pipeline_status
from devops.controller.actions.notify import announce_on_commit
from devops.controller.actions.transitions import check_transition, set_condition
from devops.models import ExecutionState as S
from devops.models import PipelineExecution


def do_admit(execution: PipelineExecution, engine: str, *, message: str = "within the executor quota") -> bool:
    """Admit a new (Waiting) or queued execution to `engine`: Waiting, `engine` set, Initialized=Unknown.

    Conditional on the row still being unadmitted in the state `execution`
    was read in; returns whether this call admitted it. The caller holds the
    project's admission lock (see loop.py), which is what keeps the quota.
    """
    old = execution.execution_state
    if old != S.WAITING:
        check_transition(old, S.WAITING)
    n = PipelineExecution.objects.filter(pk=execution.pk, execution_state=old, engine="").update(
        execution_state=S.WAITING, engine=engine,
        conditions=set_condition(execution.conditions, "Initialized", "Unknown", "Admitted", message),
    )
    if n:
        if old != S.WAITING:
            update_pipeline_status(execution, S.WAITING)
        announce_on_commit(execution, S.WAITING)
    return bool(n)


def do_queue(execution: PipelineExecution) -> bool:
    """A new execution over its project's executor-quota: Queueing until a slot frees.

    Conditional on it still being new (Waiting, not admitted); returns whether this call queued it.
    """
    check_transition(S.WAITING, S.QUEUEING)
    n = PipelineExecution.objects.filter(pk=execution.pk, execution_state=S.WAITING, engine="").update(
        execution_state=S.QUEUEING)
    if n:
        update_pipeline_status(execution, S.QUEUEING)
        announce_on_commit(execution, S.QUEUEING)
    return bool(n)
