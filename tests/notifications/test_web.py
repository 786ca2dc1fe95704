"""The settings page's Notifiers section: add, change, delete, test; per-field errors; no secret rendered."""
from __future__ import annotations

import pytest
from django.test import Client

from devops.models import Notifier

pytestmark = pytest.mark.django_db

HOOK_URL = "https://hooks.slack.invalid/services/T1/B1/PLANTED-page-token-51c0"


@pytest.fixture
def as_(personas):
    def make(name: str | None) -> Client:
        c = Client()
        if name:
            c.force_login(personas[name])
        return c
    return make


def settings_url(project) -> str:
    return f"/p/{project.id}/settings/"


def test_add_shows_the_notifier_without_its_secret(as_, project):
    bob = as_("bob")
    r = bob.post(settings_url(project) + "notifiers", {"notifier-name": "chat", "notifier-kind": "slack", "notifier-config_url": HOOK_URL})
    assert r.status_code == 302 and r["Location"].endswith("#notifiers")
    assert Notifier.objects.get(project=project, name="chat").secrets == {"url": HOOK_URL}
    page = bob.get(settings_url(project)).content.decode()
    assert 'id="notifiers"' in page and ">chat<" in page and "url=••••" in page
    assert "PLANTED" not in page
    # Saving again without the URL keeps it; a plain field is changed.
    bob.post(settings_url(project) + "notifiers", {"notifier-name": "chat", "notifier-kind": "slack", "notifier-config_url": ""})
    assert Notifier.objects.get(project=project, name="chat").secrets == {"url": HOOK_URL}
    assert bob.post(settings_url(project) + "notifiers/chat/delete").status_code == 302
    assert not Notifier.objects.filter(project=project).exists()


@pytest.mark.parametrize(("data", "message"), [
    ({"notifier-name": "hook", "notifier-kind": "webhook", "notifier-config_url": "http://127.0.0.1:6379/"}, "127.0.0.1 is a loopback address"),
    ({"notifier-name": "hook", "notifier-kind": "webhook", "notifier-config_url": ""}, "required"),
    ({"notifier-name": "Bad name", "notifier-kind": "webhook", "notifier-config_url": HOOK_URL}, "lowercase letters"),
    ({"notifier-name": "mail", "notifier-kind": "email", "notifier-config_from": "nope"}, "is not an e-mail address"),
])
def test_errors_are_shown_under_their_field(as_, project, data, message, settings):
    settings.SLIPWAY_NOTIFY_ALLOW_PRIVATE = False
    r = as_("bob").post(settings_url(project) + "notifiers", data)
    assert r.status_code == 400
    page = r.content.decode()
    field = {"lowercase letters": "id_notifier-name"}.get(
        message, "id_notifier-config_from" if "e-mail" in message else "id_notifier-config_url")
    assert f'<p class="field-error" id="{field}-error">' in page, page[page.find("notifiers"):][:3000]
    assert message in page
    assert not Notifier.objects.filter(project=project).exists()


def test_membership(as_, project):
    Notifier.objects.create(project=project, name="chat", kind="slack", secrets={"url": HOOK_URL})
    base = settings_url(project)
    assert ">chat<" in as_("ronnie").get(base).content.decode()  # read-only members see the list
    assert f'action="/p/{project.id}/settings/notifiers"' not in as_("ronnie").get(base).content.decode()
    for url in ("notifiers", "notifiers/chat/delete", "notifiers/chat/test"):
        assert as_("ronnie").post(base + url, {"notifier-name": "x", "notifier-kind": "slack"}).status_code == 403, url
        assert as_("charlie").post(base + url, {"notifier-name": "x", "notifier-kind": "slack"}).status_code == 404, url
    assert as_("charlie").get(base).status_code == 404
    assert Notifier.objects.filter(project=project).count() == 1


def test_send_test_reports_the_outcome(as_, project, receiver, settings):
    settings.SLIPWAY_NOTIFY_ALLOW_PRIVATE = True
    Notifier.objects.create(project=project, name="hook", kind="webhook", secrets={"url": receiver.url + "/PLANTED"})
    r = as_("bob").post(settings_url(project) + "notifiers/hook/test", {"recipient": ""}, follow=True)
    assert "Test of hook sent: HTTP 200." in r.content.decode()
    assert receiver.requests[0].json()["execution"]["test"] is True
    receiver.statuses = [503]
    r = as_("bob").post(settings_url(project) + "notifiers/hook/test", {"recipient": ""}, follow=True)
    page = r.content.decode()
    assert "Test of hook failed: 127.0.0.1: HTTP 503" in page and "PLANTED" not in page


def test_the_run_page_lists_its_notifications(as_, controller, project, pipeline, receiver):
    from .conftest import drain, finish_run, notifying

    Notifier.objects.create(project=project, name="hook", kind="webhook", secrets={"url": receiver.url + "/PLANTED"})
    receiver.statuses = [502]
    ex = finish_run(controller, pipeline, notifying(("", "hook"), ("a@example.com", "nope")))
    drain(controller)
    page = as_("ronnie").get(f"/p/{project.id}/pipelines/{pipeline.name}/runs/{ex.run}/").content.decode()
    section = page[page.index('id="notifications"'):]
    assert "127.0.0.1: HTTP 502: upstream trouble" in section and "next try" in section
    assert "notification.recipients[1].notifier: no notifier named &#x27;nope&#x27;" in section
    assert "PLANTED" not in page
    assert as_("charlie").get(f"/p/{project.id}/pipelines/{pipeline.name}/runs/{ex.run}/").status_code == 404
