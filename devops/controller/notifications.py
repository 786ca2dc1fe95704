"""Notifications of finished runs: a controller step, `tick_notify` (README *Notifications*).

Three phases per pass, each cheap when there is nothing to do:

1. record: sends that finished in the worker threads since the last pass
   are written back (Sent / Failed / Pending again with a backoff);
2. plan: finished executions with `notified = False` (the partial index
   exec_notify_idx: active and not-yet-planned runs only) get their
   NotificationDelivery rows, one per recipient of the file, and
   `notified = True`, in one transaction claimed by a conditional UPDATE,
   so two controllers never plan a run twice and a crash plans it again
   whole or not at all. Rancher's rules decide (devops.notifications.plan);
3. send: due Pending deliveries (notify_pending_idx) are claimed one by one
   (`attempts + 1` and `next_attempt_at = now + LEASE`, conditional on the
   attempts seen) and handed to worker threads with plain data (the
   message, the notifier's decrypted config). The pass does not wait for
   them: a slow receiver never holds the loop, so runs are never delayed.

Guarantees. A notification is sent at least once while attempts remain
and at most once more than recorded: when a controller dies (or stops)
between a send and its record, the row is still Pending with its lease;
after LEASE it is sent again (once per such crash). Transient failures
(5xx, 408, 429, timeouts, refused connections, SMTP 4xx) back off 30 s,
1 min, 2 min, ... (at most an hour) for SLIPWAY_NOTIFY_MAX_ATTEMPTS
attempts in all; permanent ones (4xx, refused addresses, an unknown
notifier) fail at once. Each row keeps the last outcome or error (never a
secret: senders name hosts, not URLs). The webhook's `X-Slipway-Delivery`
header is the row's id on every attempt, so a receiver can drop a repeat.

The flag and the delivery rows are this step's own bookkeeping, not
execution state: the run is finished and never changes again (actions/
writes execution state; this module writes only `notified`).
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from devops.crypto import Undecryptable
from devops.models import DeliveryState, NotificationDelivery, Notifier, PipelineExecution
from devops.models import ExecutionState as S
from devops.notifications.base import (
    DeliveryFailure,
    Message,
    PermanentFailure,
    SendOptions,
)
from devops.notifications.kinds import NOTIFIERS
from devops.notifications.message import build_message, repo_name
from devops.notifications.plan import plan, should_notify

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)  # a claimed send not recorded by then is tried again (a crashed controller)
PLAN_BATCH = 50
WORKERS = 4
BACKOFF_FIRST = 30.0
BACKOFF_MAX = 3600.0


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed try: 30 s doubling, at most an hour."""
    return timedelta(seconds=min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(0, attempts - 1)))


def run_url(execution: PipelineExecution) -> str:
    return (f"{settings.PUBLIC_URL}/p/{execution.project_id}/pipelines/{execution.pipeline.name}"
            f"/runs/{execution.run}/")


def facts_of(execution: PipelineExecution) -> dict:
    """The finished run as plain JSON: the message's values and the webhook body's `execution`."""
    duration = None
    if execution.started and execution.ended:
        duration = max(0.0, (execution.ended - execution.started).total_seconds())
    return {
        "execution": execution.name, "run": execution.run, "project": execution.project_id,
        "pipeline": execution.pipeline.name,
        "pipeline_display_name": execution.pipeline.display_name or execution.pipeline.name,
        "repository_url": execution.repository_url, "repo": repo_name(execution.repository_url),
        "branch": execution.branch, "ref": execution.ref, "commit": execution.commit,
        "commit_message": execution.message, "author": execution.author, "event": execution.event,
        "trigger_type": execution.trigger_type, "state": execution.execution_state,
        "started": execution.started.isoformat() if execution.started else None,
        "ended": execution.ended.isoformat() if execution.ended else None,
        "duration": duration, "error": execution.error, "url": run_url(execution),
    }


def send_options(delivery_id: str = "") -> SendOptions:
    return SendOptions(allow_private=settings.SLIPWAY_NOTIFY_ALLOW_PRIVATE,
                       timeout=float(settings.EMAIL_TIMEOUT), delivery_id=delivery_id)


def notifier_config(notifier: Notifier) -> dict[str, str]:
    """The kind's fields: plain config and decrypted secrets (PermanentFailure when undecryptable)."""
    secrets = notifier.secrets
    if isinstance(secrets, Undecryptable):
        raise PermanentFailure(f"notifier {notifier.name!r}: its secrets cannot be decrypted with this "
                               "SLIPWAY_ENCRYPTION_KEY; save them again")
    return {**(notifier.config or {}), **(secrets or {})}


def deliver(kind: str, config: dict[str, str], recipient: str, message: Message, options: SendOptions) -> str:
    """Send one message through its kind (plain data; any thread)."""
    return NOTIFIERS.load(kind)().send(config, recipient, message, options)


# --- phase 2: plan --------------------------------------------------------------------


def previous_state(execution: PipelineExecution) -> str | None:
    """The final state of the latest earlier run of the pipeline that has finished (None: none)."""
    return (PipelineExecution.objects
            .filter(pipeline_id=execution.pipeline_id, run__lt=execution.run,
                    execution_state__in=S.finished())
            .order_by("-run").values_list("execution_state", flat=True).first())


def plan_execution(execution: PipelineExecution, now: datetime) -> int:
    """Plan one finished run's notifications; the number of deliveries written (0 if another did it)."""
    notification = (execution.config or {}).get("notification") or {}
    rows: list[NotificationDelivery] = []
    if should_notify(notification, execution.execution_state, previous_state(execution)):
        notifiers = {n.name: n for n in Notifier.objects.filter(project_id=execution.project_id)}
        for p in plan(notification, {name: n.kind for name, n in notifiers.items()}):
            rows.append(NotificationDelivery(
                execution_id=execution.pk, index=p.index, notifier=notifiers.get(p.notifier),
                notifier_name=p.notifier, kind=p.kind, recipient=p.recipient[:1024],
                state=DeliveryState.FAILED if p.problem else DeliveryState.PENDING,
                error=p.problem, next_attempt_at=None if p.problem else now))
    with transaction.atomic():
        if not PipelineExecution.objects.filter(pk=execution.pk, notified=False).update(notified=True):
            return 0
        NotificationDelivery.objects.bulk_create(rows)
    return len(rows)


def plan_finished(now: datetime) -> bool:
    unplanned = PipelineExecution.objects.filter(notified=False, execution_state__in=S.finished())
    # Most runs notify nobody: one UPDATE marks them all, whatever their number,
    # so a pass costs the same with any amount of history.
    # (Two terms, because on PostgreSQL `config -> 'notification' ? 'recipients'` is NULL, not
    # false, when the key is missing, and NOT NULL matches nothing.)
    nobody = Q(config__notification__isnull=True) | ~Q(config__notification__has_key="recipients")
    did = bool(unplanned.filter(nobody).update(notified=True))
    todo = unplanned.select_related("pipeline").order_by("created")[:PLAN_BATCH]
    for execution in todo:
        try:
            plan_execution(execution, now)
            did = True
        except Exception:  # one bad row never stops the others; retried next pass
            log.exception("%s: planning notifications failed", execution.name)
    return did


# --- phases 1 and 3: send and record ---------------------------------------------------


@dataclass
class InFlight:
    delivery_id: int
    attempts: int  # the claimed attempt number: the record is conditional on it
    future: Future


class Outbox:
    """The controller's sends in flight (kept on the controller: each has its own).

    One daemon thread per send, at most WORKERS at once: a receiver that
    hangs holds one thread for its timeout, never the loop, and never the
    process's exit (an unrecorded send is resent after its lease).
    """

    def __init__(self) -> None:
        self.inflight: list[InFlight] = []

    def free(self) -> int:
        return WORKERS - len(self.inflight)

    def submit(self, fn, *args) -> Future:
        future: Future = Future()

        def work() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to the recording pass
                future.set_exception(exc)

        threading.Thread(target=work, name="notify", daemon=True).start()
        return future

    def wait(self, timeout: float | None = None) -> None:
        """Block until every send in flight is done (tests)."""
        for item in list(self.inflight):
            try:
                item.future.result(timeout=timeout)
            except Exception:  # recorded by the next pass
                pass

    def close(self) -> None:
        """Forget the sends in flight (their rows stay claimed until the lease ends)."""
        self.inflight.clear()


def outbox_of(controller) -> Outbox:
    box = getattr(controller, "_notify_outbox", None)
    if box is None:
        box = controller._notify_outbox = Outbox()
    return box


def record(item: InFlight, now: datetime) -> None:
    max_attempts = settings.SLIPWAY_NOTIFY_MAX_ATTEMPTS
    rows = NotificationDelivery.objects.filter(pk=item.delivery_id, state=DeliveryState.PENDING,
                                               attempts=item.attempts)
    try:
        outcome = item.future.result()
    except PermanentFailure as exc:
        rows.update(state=DeliveryState.FAILED, error=str(exc)[:2000], next_attempt_at=None, updated=now)
        return
    except Exception as exc:
        if isinstance(exc, DeliveryFailure):
            text = str(exc)
        else:  # a bug or an unexpected library error: its text may quote a config value, so not kept
            log.error("notification %s: %s in the sender", item.delivery_id, type(exc).__name__)
            text = f"internal error ({type(exc).__name__}); see the controller log"
        if item.attempts >= max_attempts:
            rows.update(state=DeliveryState.FAILED, next_attempt_at=None, updated=now,
                        error=f"gave up after {item.attempts} attempts: {text}"[:2000])
        else:
            rows.update(next_attempt_at=now + backoff(item.attempts), error=text[:2000], updated=now)
        return
    rows.update(state=DeliveryState.SENT, outcome=str(outcome)[:255], error="", sent_at=now,
                next_attempt_at=None, updated=now)


def record_done(box: Outbox, now: datetime) -> bool:
    done = [i for i in box.inflight if i.future.done()]
    for item in done:
        box.inflight.remove(item)
        try:
            record(item, now)
        except Exception:  # a database hiccup: the lease makes a later pass send it again
            log.exception("notification %s: recording the outcome failed", item.delivery_id)
    return bool(done)


def claim(delivery: NotificationDelivery, now: datetime) -> bool:
    return bool(NotificationDelivery.objects
                .filter(pk=delivery.pk, state=DeliveryState.PENDING, attempts=delivery.attempts)
                .update(attempts=F("attempts") + 1, next_attempt_at=now + LEASE, updated=now))


def start_due(box: Outbox, now: datetime) -> bool:
    room = box.free()
    if room <= 0:
        return False
    due = (NotificationDelivery.objects.filter(state=DeliveryState.PENDING, next_attempt_at__lte=now)
           .select_related("notifier", "execution", "execution__pipeline")
           .order_by("next_attempt_at")[:room])
    did = False
    for d in due:
        if not claim(d, now):
            continue  # another controller took it
        did = True
        attempts = d.attempts + 1
        try:
            if d.notifier is None:
                raise PermanentFailure(f"the notifier {d.notifier_name!r} was deleted")
            config = notifier_config(d.notifier)
            custom = ((d.execution.config or {}).get("notification") or {}).get("message", "")
            message = build_message(facts_of(d.execution), custom)
            future = box.submit(deliver, d.notifier.kind, config, d.recipient, message,
                                     send_options(str(d.pk)))
        except Exception as exc:  # recorded like a send's failure
            future = Future()
            future.set_exception(exc)
        box.inflight.append(InFlight(d.pk, attempts, future))
    return did


def tick_notify(controller) -> bool:
    """Controller step: record finished sends, plan finished runs, start due sends; True if any."""
    if controller.stopping:
        return False
    box = outbox_of(controller)
    now = controller.now()
    did = record_done(box, now)
    did = plan_finished(now) or did
    did = start_due(box, now) or did
    return did


def send_test(notifier: Notifier, recipient: str) -> str:
    """Send a test message now (the API's and the page's "send test"); raises DeliveryFailure."""
    message = Message(title=f"Slipway: test notification from {notifier.name}",
                      text=f"This is a test notification from Slipway's notifier {notifier.name!r} "
                           f"of project {notifier.project_id}.\n",
                      facts={"test": True, "project": notifier.project_id, "notifier": notifier.name})
    problem = NOTIFIERS.load(notifier.kind).check_recipient(recipient)
    if problem:
        raise PermanentFailure(problem)
    return deliver(notifier.kind, notifier_config(notifier), recipient, message, send_options())
