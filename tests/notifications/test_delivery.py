"""Notifications of finished runs, driven through the controller's ticks to real receivers on loopback."""
from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from email import message_from_bytes

import pytest
from django.core import mail

from devops.controller.notifications import LEASE, outbox_of, tick_notify
from devops.models import DeliveryState, NotificationDelivery, Notifier, PipelineExecution

from .conftest import drain, finish_run, notifying

pytestmark = pytest.mark.django_db


def deliveries(ex):
    return list(NotificationDelivery.objects.filter(execution=ex).order_by("index"))


def test_email_default_message_through_django_mail_backend(controller, project, pipeline):
    Notifier.objects.create(project=project, name="mail", kind="email", config={"from": "ci@example.com"})
    pipeline.repository_url = "https://git.example.com/acme/widget.git"
    pipeline.save()
    ex = finish_run(controller, pipeline, notifying(("dev@example.com, qa@example.com", "mail")),
                    commit="c0ffee" * 6 + "abcd", message="Fix the widget", author="Tess")
    drain(controller)
    [d] = deliveries(ex)
    assert (d.state, d.attempts, d.outcome) == (DeliveryState.SENT, 1, "accepted for 2 addresses")
    [m] = mail.outbox
    assert m.to == ["dev@example.com", "qa@example.com"] and m.from_email == "ci@example.com"
    assert m.subject == f"Slipway: Pipeline #{ex.run} build for acme/widget repo Success"
    body = m.body
    assert f"Pipeline execution #{ex.run} for acme/widget repo ended in 'Success' state" in body
    assert "Commit message: Fix the widget" in body and "Author: Tess" in body
    assert f"Commit: {ex.commit}" in body and "Event: manual" in body
    assert f"/p/{project.id}/pipelines/{pipeline.name}/runs/{ex.run}/" in body
    assert "Duration: " in body and "<Unknown>" not in body
    assert PipelineExecution.objects.get(pk=ex.pk).notified


def test_email_reaches_a_real_smtp_server(controller, project, pipeline, smtp_server, settings):
    port, received = smtp_server
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    Notifier.objects.create(project=project, name="mail", kind="email")
    ex = finish_run(controller, pipeline, notifying(("ops@example.com", "c-abcde:mail"), condition=["Failed"],
                                                    message="Run ${CICD_EXECUTION_SEQUENCE} on ${CICD_GIT_BRANCH}: "
                                                            "{{ .State }} ${NOT_A_CICD} ${CICD_UNKNOWN}",
                                                    fail=True))
    drain(controller)
    [d] = deliveries(ex)
    assert d.state == DeliveryState.SENT, d.error
    [envelope] = received
    assert envelope.rcpt_tos == ["ops@example.com"]
    msg = message_from_bytes(envelope.original_content)
    assert msg["Subject"].endswith("repo Failed") and msg["X-Slipway-Delivery"] == str(d.pk)
    # The file's message is text: only the run's own ${CICD_*} values are replaced.
    assert msg.get_payload(decode=True).decode().strip() == (
        f"Run {ex.run} on master: {{{{ .State }}}} ${{NOT_A_CICD}} ${{CICD_UNKNOWN}}")


def test_webhook_posts_the_run_and_signs_it(controller, project, pipeline, receiver):
    Notifier.objects.create(project=project, name="hook", kind="webhook",
                            secrets={"url": receiver.url + "/in/tok3n?x=1", "secret": "s3cr3t"})
    ex = finish_run(controller, pipeline, notifying(("", "hook")))
    drain(controller)
    [d] = deliveries(ex)
    assert (d.state, d.outcome) == (DeliveryState.SENT, "HTTP 200")
    [req] = receiver.requests
    assert req.path == "/in/tok3n?x=1"
    expected = "sha256=" + hmac.new(b"s3cr3t", req.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(req.headers["x-slipway-signature-256"], expected)
    assert req.headers["x-slipway-delivery"] == str(d.pk)
    assert req.headers["content-type"] == "application/json"
    body = req.json()
    assert body["event"] == "execution.finished"
    facts = body["execution"]
    assert (facts["execution"], facts["run"], facts["state"], facts["pipeline"], facts["commit"]) == (
        ex.name, ex.run, "Success", pipeline.name, ex.commit)
    assert facts["url"].endswith(f"/runs/{ex.run}/") and facts["duration"] is not None
    assert body["text"].startswith(f"Pipeline execution #{ex.run} ")


def test_slack_compatible_text_and_channel(controller, project, pipeline, receiver):
    Notifier.objects.create(project=project, name="chat", kind="slack", secrets={"url": receiver.url + "/hooks/T/B/X"})
    ex = finish_run(controller, pipeline, notifying(("#ci-cd", "chat")))
    drain(controller)
    assert deliveries(ex)[0].state == DeliveryState.SENT
    [req] = receiver.requests
    body = req.json()
    assert set(body) == {"text", "channel"} and body["channel"] == "#ci-cd"
    assert f"#{ex.run} " in body["text"] and "'Success' state" in body["text"]
    assert "x-slipway-signature-256" not in req.headers


@pytest.mark.parametrize(("condition", "notified_runs"), [
    (["Success"], [1, 2, 5]),
    (["Failed"], [3, 4]),
    (["Changed"], [3, 5]),         # run 1 has no finished run before it
    (["Failed", "Changed"], [3, 4, 5]),
])
def test_conditions_across_consecutive_runs(controller, project, pipeline, receiver, condition, notified_runs):
    Notifier.objects.create(project=project, name="hook", kind="webhook", secrets={"url": receiver.url})
    runs = []
    for fail in (False, False, True, True, False):  # Success Success Failed Failed Success
        runs.append(finish_run(controller, pipeline, notifying(("", "hook"), condition=condition, fail=fail)))
        drain(controller)
    sent = sorted(json.loads(r.body)["execution"]["run"] for r in receiver.requests)
    assert sent == notified_runs
    assert all(PipelineExecution.objects.get(pk=r.pk).notified for r in runs)
    assert NotificationDelivery.objects.count() == len(notified_runs)


def test_transient_502_is_retried_with_backoff_then_sent(controller, project, pipeline, receiver, clock):
    Notifier.objects.create(project=project, name="hook", kind="webhook", secrets={"url": receiver.url})
    receiver.statuses = [502]
    ex = finish_run(controller, pipeline, notifying(("", "hook")))
    drain(controller)
    [d] = deliveries(ex)
    assert (d.state, d.attempts) == (DeliveryState.PENDING, 1)
    assert "HTTP 502" in d.error and "upstream trouble" in d.error
    assert d.next_attempt_at == clock.t + timedelta(seconds=30)
    drain(controller)  # not due yet: nothing is sent
    assert len(receiver.requests) == 1
    clock.advance(seconds=31)
    drain(controller)
    d.refresh_from_db()
    assert (d.state, d.attempts, d.error) == (DeliveryState.SENT, 2, "")
    assert [r.headers["x-slipway-delivery"] for r in receiver.requests] == [str(d.pk)] * 2


def test_gives_up_after_the_last_attempt(controller, project, pipeline, receiver, clock, settings):
    settings.SLIPWAY_NOTIFY_MAX_ATTEMPTS = 2
    Notifier.objects.create(project=project, name="hook", kind="webhook", secrets={"url": receiver.url})
    receiver.statuses = [503, 503, 503]
    ex = finish_run(controller, pipeline, notifying(("", "hook")))
    drain(controller)
    clock.advance(minutes=5)
    drain(controller)
    [d] = deliveries(ex)
    assert (d.state, d.attempts) == (DeliveryState.FAILED, 2)
    assert d.error.startswith("gave up after 2 attempts: 127.0.0.1: HTTP 503")
    clock.advance(hours=2)
    drain(controller)
    assert len(receiver.requests) == 2


def test_4xx_fails_at_once(controller, project, pipeline, receiver, clock):
    Notifier.objects.create(project=project, name="hook", kind="webhook", secrets={"url": receiver.url})
    receiver.statuses = [404]
    ex = finish_run(controller, pipeline, notifying(("", "hook")))
    drain(controller)
    clock.advance(hours=1)
    drain(controller)
    [d] = deliveries(ex)
    assert (d.state, d.attempts) == (DeliveryState.FAILED, 1) and "HTTP 404" in d.error
    assert len(receiver.requests) == 1


def test_connection_refused_is_transient(controller, project, pipeline, receiver):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    Notifier.objects.create(project=project, name="hook", kind="webhook", secrets={"url": f"http://127.0.0.1:{port}/x"})
    ex = finish_run(controller, pipeline, notifying(("", "hook")))
    drain(controller)
    [d] = deliveries(ex)
    assert d.state == DeliveryState.PENDING and "ConnectionRefusedError" in d.error


def test_loopback_refused_at_send_unless_allowed(controller, project, pipeline, receiver, settings):
    settings.SLIPWAY_NOTIFY_ALLOW_PRIVATE = False
    secret_url = receiver.url + "/very-secret-token"
    Notifier.objects.create(project=project, name="hook", kind="webhook", secrets={"url": secret_url})
    ex = finish_run(controller, pipeline, notifying(("", "hook")))
    drain(controller)
    [d] = deliveries(ex)
    assert d.state == DeliveryState.FAILED and "127.0.0.1 is a loopback address" in d.error
    assert "very-secret-token" not in d.error
    assert receiver.requests == []


def test_unknown_notifier_and_bad_recipient_are_recorded_with_their_field_path(controller, project, pipeline):
    Notifier.objects.create(project=project, name="mail", kind="email")
    ex = finish_run(controller, pipeline, notifying(("x@example.com", "c-1:n-gone"), ("not-an-address", "mail")))
    drain(controller)
    first, second = deliveries(ex)
    assert first.state == second.state == DeliveryState.FAILED
    assert first.error == ("notification.recipients[0].notifier: no notifier named 'n-gone' in this project "
                           "(known: mail)")
    assert second.error == "notification.recipients[1].recipient: 'not-an-address' is not an e-mail address"
    assert mail.outbox == []


def test_crash_between_send_and_record_resends_once_after_the_lease(engine, data_dir, project, pipeline,
                                                                      receiver, clock, settings):
    from devops.controller.loop import Controller

    settings.SLIPWAY_NOTIFY_ALLOW_PRIVATE = True
    Notifier.objects.create(project=project, name="hook", kind="webhook", secrets={"url": receiver.url})
    first = Controller(engine, clock=clock)
    ex = finish_run(first, pipeline, notifying(("", "hook")))
    tick_notify(first)          # planned and sent ...
    outbox_of(first).wait(30)   # ... but this controller dies before recording it
    outbox_of(first).close()
    second = Controller(engine, clock=clock)
    drain(second)
    assert len(receiver.requests) == 1  # the lease holds: not sent again yet
    clock.advance(seconds=LEASE.total_seconds() + 1)
    drain(second)
    [d] = deliveries(ex)
    assert (d.state, d.attempts) == (DeliveryState.SENT, 2)
    assert [r.headers["x-slipway-delivery"] for r in receiver.requests] == [str(d.pk)] * 2
    outbox_of(second).close()


def test_two_controllers_plan_a_run_once(controller, engine, project, pipeline, receiver, clock):
    from devops.controller.loop import Controller

    Notifier.objects.create(project=project, name="hook", kind="webhook", secrets={"url": receiver.url})
    ex = finish_run(controller, pipeline, notifying(("", "hook")))
    other = Controller(engine, clock=clock)
    drain(other)
    drain(controller)
    assert len(deliveries(ex)) == 1 and len(receiver.requests) == 1
    outbox_of(other).close()


def test_a_run_without_notification_is_marked_and_costs_nothing_later(controller, project, pipeline,
                                                                     django_assert_max_num_queries):
    from .conftest import make_config

    ex = finish_run(controller, pipeline, make_config([{}]))
    drain(controller)
    assert PipelineExecution.objects.get(pk=ex.pk).notified and not deliveries(ex)
    # Mark the runs that notify nobody, read the runs to plan, read the due deliveries.
    with django_assert_max_num_queries(3):
        assert tick_notify(controller) is False


def test_a_block_without_recipients_is_marked_in_bulk(controller, project, pipeline):
    from devops.pipeline.config import Notification

    from .conftest import make_config

    config = make_config([{}]).model_copy(update={"notification": Notification(condition=("Success",))})
    ex = finish_run(controller, pipeline, config)
    PipelineExecution.objects.bulk_create(  # history with every shape of config
        PipelineExecution(project=project, pipeline=pipeline, name=f"old-{i}", run=100 + i,
                          execution_state="Success", config=c)
        for i, c in enumerate([{}, {"notification": None}, {"notification": {}}, {"stages": []}]))
    tick_notify(controller)
    assert PipelineExecution.objects.filter(notified=False).count() == 0
    assert not deliveries(ex)


def test_notifier_deleted_before_the_send_fails_the_notification(controller, project, pipeline, receiver, clock):
    n = Notifier.objects.create(project=project, name="hook", kind="webhook", secrets={"url": receiver.url})
    receiver.statuses = [503]
    ex = finish_run(controller, pipeline, notifying(("", "hook")))
    drain(controller)
    n.delete()
    clock.advance(minutes=1)
    drain(controller)
    [d] = deliveries(ex)
    assert (d.state, d.notifier_name, d.error) == (DeliveryState.FAILED, "hook", "the notifier 'hook' was deleted")


def test_no_secret_in_any_log_line_or_record(controller, project, pipeline, receiver, clock, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    Notifier.objects.create(project=project, name="hook", kind="webhook",
                            secrets={"url": receiver.url + "/PLANTED-path-token?key=PLANTED-query",
                                     "secret": "PLANTED-hmac"})
    Notifier.objects.create(project=project, name="gone", kind="slack",
                            secrets={"url": "https://PLANTED-host.invalid/PLANTED-path"})
    receiver.statuses = [500, 400]
    ex = finish_run(controller, pipeline, notifying(("", "hook"), ("#x", "gone")))
    drain(controller)
    clock.advance(minutes=1)
    drain(controller)
    rows = deliveries(ex)
    assert [r.state for r in rows] == [DeliveryState.FAILED, DeliveryState.PENDING]
    text = " ".join(f"{r.error} {r.outcome}" for r in rows) + caplog.text
    assert "PLANTED-path" not in text and "PLANTED-query" not in text and "PLANTED-hmac" not in text
    assert rows[1].error.startswith("cannot resolve planted-host.invalid")  # the host is named, nothing else


def test_a_receiver_that_never_answers_is_a_transient_timeout(controller, project, pipeline, settings):
    import socket

    settings.EMAIL_TIMEOUT = 1  # the senders' timeout (seconds)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # the kernel completes the handshake; nobody ever reads or answers
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        Notifier.objects.create(project=project, name="hook", kind="webhook", secrets={"url": url})
        ex = finish_run(controller, pipeline, notifying(("", "hook")))
        drain(controller)
        [d] = deliveries(ex)
        assert (d.state, d.attempts, d.error) == (DeliveryState.PENDING, 1, "127.0.0.1: timed out after 1 s")
    finally:
        silent.close()
