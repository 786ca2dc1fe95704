"""The `notification` block in lint: Rancher's recipient shape, and notifier names checked per project."""
from __future__ import annotations

import pytest

from devops.models import Notifier
from devops.pipeline import lint, load
from tests.api.conftest import client_as  # noqa: F401

FILE = """\
stages:
- name: Build
  steps:
  - runScriptConfig: {image: busybox, shellScript: "true"}
notification:
  recipients:
  - recipient: dev@example.com
    notifier: c-56lvs:mail
  - recipient: '#ci'
    notifier: chat
  condition: [Success, Changed, Failed]
"""


def problems(text, **kw):
    return [(p.path, p.line, p.column, p.severity, p.message) for p in lint(text, **kw)]


def test_rancher_shape_lints_clean_without_a_project():
    assert problems(FILE) == []
    config = load(FILE).config
    assert [dict(r) for r in config.notification.recipients] == [
        {"recipient": "dev@example.com", "notifier": "c-56lvs:mail"}, {"recipient": "#ci", "notifier": "chat"}]


def test_unknown_notifier_is_a_problem_at_its_field_when_the_project_is_known():
    assert problems(FILE, notifiers={"mail"}) == [
        ("notification.recipients[1].notifier", 10, 15, "warning",
         "no notifier named 'chat' in this project (known: mail)")]
    assert problems(FILE, notifiers={"mail", "chat"}) == []


def test_recipient_without_notifier_unknown_keys_and_no_condition():
    text = FILE.replace("    notifier: chat\n", "    channel: chat\n").replace("  condition: [Success, Changed, Failed]\n", "")
    assert problems(text) == [
        ("notification.condition", 6, 3, "warning",
         "no `condition`: nothing is ever sent (list any of Success, Failed, Changed, Aborted)"),
        ("notification.recipients[1].notifier", 9, 5, "warning",
         "a recipient needs `notifier`: the name of one of the project's notifiers (else it is never sent)"),
        ("notification.recipients[1].channel", 10, 5, "warning", "unknown key `channel` in a recipient is ignored"),
    ]


def test_every_rancher_fixture_with_notifications_still_loads(fixtures_dir):
    seen = 0
    for path in sorted((fixtures_dir / "rancher-pipelines").glob("*.yml")):
        text = path.read_text()
        if "recipients" not in text:
            continue
        seen += 1
        result = load(text)
        assert result.ok, (path.name, result.errors)
        assert not [p for p in result.problems if p.path.startswith("notification")], path.name
    assert seen >= 5


@pytest.mark.django_db
def test_lint_api_checks_notifiers_for_members(project, client_as):  # noqa: F811
    Notifier.objects.create(project=project, name="mail", kind="email")
    url = f"/api/v1/lint?project={project.id}"
    r = client_as("ronnie").post(url, {"yaml": FILE}, format="json")
    assert r.status_code == 200 and r.json()["ok"] is True
    assert [(p["path"], p["message"]) for p in r.json()["problems"]] == [
        ("notification.recipients[1].notifier", "no notifier named 'chat' in this project (known: mail)")]
    assert client_as("charlie").post(url, {"yaml": FILE}, format="json").status_code == 404
    assert client_as("charlie").post("/api/v1/lint", {"yaml": FILE}, format="json").json()["problems"] == []
