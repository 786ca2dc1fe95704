"""do_start: an admitted execution handed to the engine becomes Building with its handle."""
from __future__ import annotations

from typing import Any

from django.utils import timezone

from devops.controller.actions.notify import announce_on_commit
from devops.controller.actions.transitions import check_transition, set_condition
from devops.models import ExecutionState as S
from devops.models import Pipeline, PipelineExecution


def claim_for_node(execution: PipelineExecution, node: str) -> bool:
    """Record `node` as the owner of an admitted execution's runner, before `engine.run()`.

    Committed on its own (not in the start's transaction), so that after a
    crash between `run()` and `do_start` the row still names the node whose
    machine may hold the runner. True if the row is unclaimed or already
    `node`'s; False if another node owns it (or it is no longer admitted).
    """
    return bool(
        PipelineExecution.objects.filter(
            pk=execution.pk, execution_state=S.WAITING, engine__gt="", controller_node__in=["", node],
        ).update(controller_node=node)
    )


def adopt_for_node(execution: PipelineExecution, lost: str, node: str) -> bool:
    """Move an execution of the lost node `lost` to `node` (its engine can still reach the runner)."""
    return bool(
        PipelineExecution.objects.filter(pk=execution.pk, controller_node=lost).update(controller_node=node)
    )


def do_start(execution: PipelineExecution, handle: dict[str, Any], *, node: str = "", engine_name: str = "") -> bool:
    """The engine has the run: Waiting (admitted) -> Building, storing `handle` and the owning `node`.

    Conditional on the row still being admitted and Waiting (a user's stop
    wins); returns whether this call started it.
    """
    check_transition(S.WAITING, S.BUILDING)
    now = timezone.now()
    engine_name = engine_name or execution.engine
    fields: dict[str, Any] = {
        "execution_state": S.BUILDING, "engine_handle": handle or {}, "started": now,
        "conditions": set_condition(execution.conditions, "Initialized", "True", "Running",
                                    f"handed to the {engine_name} engine"),
        "unit_error": "", "unit_attempts": 0, "unit_retry_at": None,
    }
    if node:
        fields["controller_node"] = node
    n = PipelineExecution.objects.filter(pk=execution.pk, execution_state=S.WAITING).exclude(engine="").update(**fields)
    if n:
        Pipeline.objects.filter(pk=execution.pipeline_id, last_execution_id=execution.name).update(
            last_run_state=S.BUILDING, last_started=now)
        announce_on_commit(execution, S.BUILDING)
    return bool(n)
