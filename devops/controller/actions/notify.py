"""Wake-ups and announcements: the doorbell, NOTIFY, and `execution_changed`."""
from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection, transaction
from django.dispatch import Signal

from devops.models import PipelineExecution

log = logging.getLogger("devops.controller.actions")

NOTIFY_CHANNEL = "slipway_controller"

# Sent after commit whenever an execution's (or one of its steps') state
# changed, in the process that changed it: kwargs `execution` (name),
# `project_id`, `state`. Live views connect here to push updates to browsers
# (over the channel layer when they run in another process).
execution_changed = Signal()


def ring_controllers() -> None:
    """Wake controllers: the local doorbell, and NOTIFY on PostgreSQL (other machines)."""
    from devops.doorbell import ring

    ring(settings.DATA_DIR)
    if connection.vendor == "postgresql":
        try:
            with connection.cursor() as cur:
                cur.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])
        except Exception:  # a wake-up is best effort; the idle timeout covers a miss
            log.debug("NOTIFY failed", exc_info=True)


def ring_on_commit(execution: PipelineExecution | None = None, state: str = "") -> None:
    transaction.on_commit(ring_controllers)
    if execution is not None:
        announce_on_commit(execution, state)


def announce_on_commit(execution: PipelineExecution, state: str) -> None:
    """`execution_changed` once the current transaction commits (never for a rolled-back change)."""
    name, project_id = execution.name, execution.project_id
    transaction.on_commit(lambda: execution_changed.send(
        sender=PipelineExecution, execution=name, project_id=project_id, state=state))


