"""A controller unit that raised on one execution: recorded on the row, retried with backoff, bounded.

One bad row (a stored credential that no longer decrypts, a config of an
old schema, an engine bug on one run) must never stop the controller's pass
for the others (STYLE.md, "The controller"). The unit's error is stored on
the execution with the number of attempts in a row and the time of the
next one; after UNIT_MAX_ATTEMPTS the execution ends Failed with the reason
(or, for a stopped run, its slot is freed without the stop).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction

from devops.controller.actions.finish import do_finish
from devops.controller.actions.stop import do_stopped
from devops.models import ExecutionState as S
from devops.models import PipelineExecution

# Attempts of one unit on one execution before the controller gives up on it.
UNIT_MAX_ATTEMPTS = 5
# Backoff between attempts: 2 s, 4 s, 8 s, 16 s ... capped at 5 minutes.
UNIT_BACKOFF_BASE = 2.0
UNIT_BACKOFF_MAX = 300.0
_MESSAGE_MAX = 2000


def unit_backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failure in a row."""
    return timedelta(seconds=min(UNIT_BACKOFF_BASE * 2 ** max(0, attempts - 1), UNIT_BACKOFF_MAX))


def do_unit_failed(execution: PipelineExecution, unit: str, error: str, *, now: datetime) -> bool:
    """Record that controller unit `unit` raised `error` on `execution`; True if it gave up.

    Giving up (the UNIT_MAX_ATTEMPTS-th failure in a row): an active
    execution ends Failed through `do_finish` with the reason (if it was
    admitted, `abort_requested` is set too, so the controller stops whatever
    the engine runs of it before its slot frees); a stopped one has its
    slot freed through `do_stopped`. A finished execution is not changed.
    """
    message = f"{unit}: {error}"[:_MESSAGE_MAX]
    with transaction.atomic():
        row = (PipelineExecution.objects.select_for_update(of=("self",)).filter(pk=execution.pk)
               .only("id", "name", "project_id", "pipeline_id", "execution_state", "conditions", "error",
                     "abort_requested", "engine", "unit_attempts").first())
        if row is None or (row.is_finished and not row.abort_requested):
            return False
        attempts = row.unit_attempts + 1
        gave_up = attempts >= UNIT_MAX_ATTEMPTS
        PipelineExecution.objects.filter(pk=row.pk).update(
            unit_error=message, unit_attempts=attempts,
            unit_retry_at=None if gave_up else now + unit_backoff(attempts),
        )
        if not gave_up:
            return False
        reason = f"the controller gave up after {attempts} attempts: {message}"
        if row.execution_state in S.active():
            if row.engine:
                # The engine may run it: the controller stops the runner (by
                # name if need be) before the slot frees, as after a user's stop.
                PipelineExecution.objects.filter(pk=row.pk).update(abort_requested=True)
            return do_finish(row, S.FAILED, error=reason)
        return do_stopped(row)


def do_unit_ok(execution: PipelineExecution) -> None:
    """A unit succeeded on an execution that had failed before: the count starts again."""
    PipelineExecution.objects.filter(pk=execution.pk, unit_attempts__gt=0).update(
        unit_error="", unit_attempts=0, unit_retry_at=None)
