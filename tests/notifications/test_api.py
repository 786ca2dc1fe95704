"""Notifiers through the API: CRUD in CRD shape, membership, write-only secrets, field errors, test sends."""
from __future__ import annotations

import logging

import pytest

from devops.models import NotificationDelivery, Notifier
from tests.api.conftest import client_as  # noqa: F401

from .conftest import drain, finish_run, notifying

pytestmark = pytest.mark.django_db

# .invalid never resolves (RFC 6761): a test send fails fast, with no network.
SECRET_URL = "https://hooks.slack.invalid/services/T000/B000/PLANTED-hook-token-9d2e"
HMAC_KEY = "PLANTED-hmac-key-31f7"


def base(project) -> str:
    return f"/api/v1/projects/{project.id}/notifiers/"


def create_hook(client, project, **config):
    return client.post(base(project), {"name": "hook", "kind": "webhook",
                                       "config": {"url": SECRET_URL, "secret": HMAC_KEY, **config}}, format="json")


def test_create_read_update_delete_and_secrets_are_write_only(project, client_as, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    bob = client_as("bob")
    created = create_hook(bob, project)
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["kind"] == "Notifier" and body["metadata"]["name"] == "hook"
    assert body["spec"] == {"kind": "webhook", "config": {}, "secretFields": ["secret", "url"]}
    stored = Notifier.objects.get(project=project, name="hook")
    assert stored.secrets == {"url": SECRET_URL, "secret": HMAC_KEY}
    responses = [created, bob.get(base(project)), client_as("ronnie").get(base(project) + "hook/")]
    # PATCH without the secrets keeps them; a new URL replaces only the URL.
    responses.append(bob.patch(base(project) + "hook/", {"config": {"url": SECRET_URL + "-2"}}, format="json"))
    assert responses[-1].status_code == 200
    stored.refresh_from_db()
    assert stored.secrets == {"url": SECRET_URL + "-2", "secret": HMAC_KEY}
    # "" clears a secret field.
    responses.append(bob.patch(base(project) + "hook/", {"config": {"secret": ""}}, format="json"))
    assert responses[-1].json()["spec"]["secretFields"] == ["url"]
    for r in responses:
        assert b"PLANTED" not in r.content, r.content
    assert "PLANTED" not in caplog.text
    assert bob.delete(base(project) + "hook/").status_code == 204
    assert not Notifier.objects.filter(project=project).exists()


def test_email_notifier_plain_config_is_returned(project, client_as):  # noqa: F811
    r = client_as("alice").post(base(project), {"name": "mail", "kind": "email",
                                                "config": {"from": "ci@example.com"}}, format="json")
    assert r.status_code == 201 and r.json()["spec"]["config"] == {"from": "ci@example.com"}


@pytest.mark.parametrize(("persona", "read", "write", "send"), [
    ("alice", 200, 201, 502), ("bob", 200, 201, 502), ("ronnie", 200, 403, 403), ("charlie", 404, 404, 404),
])
def test_membership(project, client_as, persona, read, write, send):  # noqa: F811
    Notifier.objects.create(project=project, name="existing", kind="slack", secrets={"url": SECRET_URL})
    c = client_as(persona)
    assert c.get(base(project)).status_code == read
    assert c.get(base(project) + "existing/").status_code == read
    assert create_hook(c, project).status_code == write
    edit = 200 if write == 201 else write
    assert c.patch(base(project) + "existing/", {"config": {"url": SECRET_URL}}, format="json").status_code == edit
    # 502: the member may send, and the .invalid host cannot be resolved.
    assert c.post(base(project) + "existing/test", {"recipient": ""}, format="json").status_code == send
    assert c.delete(base(project) + "existing/").status_code == (204 if write == 201 else write)
    assert client_as(None).get(base(project)).status_code in (401, 403)


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"name": "Bad Name", "kind": "webhook", "config": {"url": SECRET_URL}}, "name", "lowercase letters"),
    ({"name": "x", "kind": "pager", "config": {}}, "kind", "one of email, webhook, slack"),
    ({"name": "x", "kind": "webhook", "config": {}}, "config.url", "required"),
    ({"name": "x", "kind": "webhook", "config": {"url": "ftp://example.com/x"}}, "config.url",
     "an http:// or https:// URL"),
    ({"name": "x", "kind": "webhook", "config": {"url": "http://127.0.0.1:8000/api"}}, "config.url",
     "127.0.0.1 is a loopback address; notifiers may not reach it (SLIPWAY_NOTIFY_ALLOW_PRIVATE)"),
    ({"name": "x", "kind": "slack", "config": {"url": "http://169.254.169.254/latest/meta-data"}}, "config.url",
     "169.254.169.254 is a link-local address"),
    ({"name": "x", "kind": "slack", "config": {"url": "http://[::1]:6379/"}}, "config.url", "loopback"),
    ({"name": "x", "kind": "webhook", "config": {"url": "http://10.0.0.5/"}}, "config.url", "private"),
    ({"name": "x", "kind": "webhook", "config": {"url": "http://localhost:5432/"}}, "config.url", "this machine"),
    ({"name": "x", "kind": "webhook", "config": {"url": "https://u:p@example.com/"}}, "config.url", "user:password"),
    ({"name": "x", "kind": "email", "config": {"from": "nobody"}}, "config.from", "not an e-mail address"),
    ({"name": "x", "kind": "email", "config": {"to": "a@example.com"}}, "config.to", "unknown field"),
])
def test_bad_input_names_the_field(project, client_as, data, field, message, settings):  # noqa: F811
    settings.SLIPWAY_NOTIFY_ALLOW_PRIVATE = False
    r = client_as("bob").post(base(project), data, format="json")
    assert r.status_code == 400, r.content
    errors = r.json()
    for part in field.split("."):
        errors = errors[part]
    assert any(message in e for e in errors), errors
    assert not Notifier.objects.filter(project=project).exists()


def test_loopback_allowed_by_the_operator_setting(project, client_as, settings):  # noqa: F811
    settings.SLIPWAY_NOTIFY_ALLOW_PRIVATE = True
    r = client_as("bob").post(base(project), {"name": "local", "kind": "webhook",
                                              "config": {"url": "http://127.0.0.1:9/x"}}, format="json")
    assert r.status_code == 201


def test_duplicate_name_is_a_name_error(project, client_as):  # noqa: F811
    assert create_hook(client_as("bob"), project).status_code == 201
    r = create_hook(client_as("bob"), project)
    assert r.status_code == 400 and "exists" in r.json()["name"][0]


def test_send_test_reaches_the_receiver(project, client_as, receiver, settings):  # noqa: F811
    settings.SLIPWAY_NOTIFY_ALLOW_PRIVATE = True
    Notifier.objects.create(project=project, name="chat", kind="slack", secrets={"url": receiver.url + "/PLANTED-x"})
    r = client_as("bob").post(base(project) + "chat/test", {"recipient": "#ops"}, format="json")
    assert r.status_code == 200 and r.json() == {"ok": True, "outcome": "HTTP 200"}
    [req] = receiver.requests
    assert req.json()["channel"] == "#ops" and "test notification" in req.json()["text"]
    receiver.statuses = [500]
    r = client_as("bob").post(base(project) + "chat/test", {}, format="json")
    assert r.status_code == 502 and r.json()["ok"] is False and "HTTP 500" in r.json()["error"]
    assert b"PLANTED" not in r.content


def test_send_test_email_needs_an_address(project, client_as):  # noqa: F811
    Notifier.objects.create(project=project, name="mail", kind="email")
    r = client_as("bob").post(base(project) + "mail/test", {"recipient": ""}, format="json")
    assert r.status_code == 400 and "needs a `recipient`" in r.json()["recipient"][0]
    from django.core import mail

    r = client_as("bob").post(base(project) + "mail/test", {"recipient": "me@example.com"}, format="json")
    assert r.status_code == 200 and mail.outbox[0].to == ["me@example.com"]


def test_a_runs_notifications_are_listed_for_members_only(controller, project, pipeline, client_as,  # noqa: F811
                                                         receiver):
    Notifier.objects.create(project=project, name="hook", kind="webhook",
                            secrets={"url": receiver.url + "/PLANTED-path"})
    ex = finish_run(controller, pipeline, notifying(("", "hook"), ("x", "missing")))
    drain(controller)
    url = f"/api/v1/projects/{project.id}/executions/{ex.name}/notifications"
    r = client_as("ronnie").get(url)
    assert r.status_code == 200
    items = r.json()["items"]
    assert [(i["notifier"], i["state"], i["attempts"]) for i in items] == [("hook", "Sent", 1), ("", "Failed", 0)]
    assert items[0]["outcome"] == "HTTP 200" and "no notifier named 'missing'" in items[1]["error"]
    assert b"PLANTED" not in r.content
    assert client_as("charlie").get(url).status_code == 404
    assert NotificationDelivery.objects.count() == 2
