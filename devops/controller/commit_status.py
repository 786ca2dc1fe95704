"""Commit status back to the provider: pending when a run starts, its result at the end.

`tick_commit_status` (one line in loop.py's tick) looks at the executions of
pipelines made from a provider repository (`SourceCodeRepository.pipeline`)
and reports what changed since the last report (`CommitStatus.sent`). It is
durable and never blocks a run: the run's state is the source of truth, the
row only remembers what the provider accepted, so a crash repeats at most one
status (which the providers treat as an update). Transient failures (5xx,
429, timeouts) back off 2 s doubling to 5 min — longer if `Retry-After` says
so — up to SLIPWAY_COMMIT_STATUS_ATTEMPTS per state; a revoked token or a 4xx
gives up at once (the reason stays on the row). Expiring tokens are refreshed
here too, before they expire (scmcreds.refresh_due_credentials).
"""
from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from devops.controller import scmcreds
from devops.models import CommitStatus, PipelineExecution
from devops.scm import http
from devops.scm.base import STATUS_OF_RUN

log = logging.getLogger(__name__)

BATCH = 50
BACKOFF_MAX = 300.0
LOOKBACK = timedelta(days=2)  # executions older than this when first seen get no status
CREDENTIAL_INTERVAL = 60.0


def backoff(attempts: int, retry_after: float | None = None) -> float:
    return max(min(2.0 * 2 ** (attempts - 1), BACKOFF_MAX), retry_after or 0.0)


def run_url(e: PipelineExecution) -> str:
    return settings.PUBLIC_URL + reverse("web:run", args=[e.project_id, e.pipeline.name, e.run])


def describe(e: PipelineExecution, state: str) -> str:
    return {"pending": f"Run #{e.run} is running", "success": f"Run #{e.run} succeeded",
            "failure": f"Run #{e.run} failed", "error": f"Run #{e.run} was {e.execution_state.lower()}"}[state]


_last_credentials = 0.0


def tick_commit_status(controller=None) -> bool:
    """Report every changed commit status that is due; True if a provider was called."""
    global _last_credentials
    did = False
    if time.monotonic() - _last_credentials >= CREDENTIAL_INTERVAL:
        _last_credentials = time.monotonic()
        did = scmcreds.refresh_due_credentials() or did
    now = timezone.now()
    # New executions of provider pipelines get their row (bounded; the partial index keeps it cheap).
    fresh = (PipelineExecution.objects.filter(pipeline__scm_repository__isnull=False, commit_status__isnull=True,
                                              created__gte=now - LOOKBACK)
             .exclude(commit="").values_list("pk", flat=True)[:BATCH])
    CommitStatus.objects.bulk_create([CommitStatus(execution_id=pk) for pk in fresh], ignore_conflicts=True)
    rows = (CommitStatus.objects.filter(done=False).filter(Q(retry_at__isnull=True) | Q(retry_at__lte=now))
            .select_related("execution__pipeline__scm_repository__credential").order_by("retry_at", "pk")[:BATCH])
    for row in rows:
        if controller is not None and getattr(controller, "stopping", False):
            break
        try:
            did = report(row) or did
        except DatabaseError:
            raise  # the loop retries database errors next pass
        except Exception as exc:  # one bad row never stops the loop: recorded, retried later
            log.exception("%s: commit status failed", row.execution_id)
            row.attempts += 1
            row.last_error = f"{type(exc).__name__}: {exc}"[:500]
            row.retry_at = timezone.now() + timedelta(seconds=backoff(row.attempts))
            row.done = row.attempts >= settings.SLIPWAY_COMMIT_STATUS_ATTEMPTS
            row.save(update_fields=["attempts", "last_error", "retry_at", "done", "updated"])
            did = True
    return did


def report(row: CommitStatus) -> bool:
    e = row.execution
    want = STATUS_OF_RUN.get(e.execution_state, "")
    final = e.execution_state in ("Success", "Failed", "Denied", "Aborted", "Skipped")
    if e.execution_state in ("Waiting", "Queueing") and not row.sent:
        return False  # not started yet: "pending" goes out when it is Building
    repo = getattr(e.pipeline, "scm_repository", None)
    if repo is None or repo.credential is None or not want:
        row.done = True
        row.save(update_fields=["done", "updated"])
        return False
    if want == row.sent:
        if final:
            row.done = True
            row.save(update_fields=["done", "updated"])
        return False
    repo_data = scmcreds.repo_data(repo)
    try:
        scmcreds.call(repo.credential, lambda p: p.set_status(repo_data, e.commit, want, run_url(e),
                                                              describe(e, want)))
    except http.Transient as exc:
        row.attempts += 1
        row.last_error = str(exc)[:500]
        if row.attempts >= settings.SLIPWAY_COMMIT_STATUS_ATTEMPTS:
            log.warning("%s: commit status %s given up after %d attempts: %s", e.name, want, row.attempts, exc)
            row.done, row.retry_at = final, None
            row.sent = want  # give up on this state; a later state is tried afresh
            row.attempts = 0
        else:
            row.retry_at = timezone.now() + timedelta(seconds=backoff(row.attempts, exc.retry_after))
        row.save(update_fields=["attempts", "last_error", "retry_at", "done", "sent", "updated"])
        return True
    except (http.ProviderError, scmcreds.NotConnected) as exc:
        log.warning("%s: commit status %s refused: %s", e.name, want, exc)
        row.last_error, row.sent, row.attempts, row.retry_at = str(exc)[:500], want, 0, None
        row.done = final
        row.save(update_fields=["attempts", "last_error", "retry_at", "done", "sent", "updated"])
        return True
    row.sent, row.attempts, row.retry_at, row.last_error, row.done = want, 0, None, "", final
    row.save(update_fields=["attempts", "last_error", "retry_at", "done", "sent", "updated"])
    log.info("%s: commit status %s sent for %s", e.name, want, e.commit[:12])
    return True
