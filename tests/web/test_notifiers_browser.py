"""The settings page's Notifiers section in a real browser: the field error, then a saved notifier
whose URL the page never shows again (README *Notifications*)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from devops.models import Notifier

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

SECRET_URL = "https://hooks.slack.invalid/services/T1/B1/PLANTED-browser-9a1c"


def test_a_member_adds_a_notifier_and_sees_errors_under_their_field(page_as, web_project, axe_check):
    page = page_as("bob")
    page.goto(f"/p/{web_project.id}/settings/#notifiers")
    section = page.locator("section", has=page.get_by_role("heading", name="Notifiers"))
    section.get_by_label("Notifier name").fill("chat")
    section.get_by_label("Kind").select_option(label="Slack-compatible webhook")
    section.get_by_label("URL", exact=True).fill("http://127.0.0.1:6379/")  # the host's own Redis port
    section.get_by_role("button", name="Save notifier").click()
    error = page.locator("#id_notifier-config_url-error")
    expect(error).to_contain_text("127.0.0.1 is a loopback address; notifiers may not reach it")
    assert not Notifier.objects.filter(project=web_project).exists()
    section = page.locator("section", has=page.get_by_role("heading", name="Notifiers"))
    section.get_by_label("URL", exact=True).fill(SECRET_URL)
    section.get_by_role("button", name="Save notifier").click()
    row = page.get_by_role("row", name="chat")
    expect(row).to_contain_text("Slack-compatible webhook")
    expect(row).to_contain_text("url=••••")
    assert "PLANTED" not in page.content()
    assert Notifier.objects.get(project=web_project, name="chat").secrets == {"url": SECRET_URL}
    assert axe_check(page) == []
    page.get_by_label("Test recipient for chat").fill("#ci")
    page.get_by_role("button", name="Send test with chat").click()
    expect(page.get_by_role("main")).to_contain_text("Test of chat failed: cannot resolve hooks.slack.invalid")
    assert "PLANTED" not in page.content()
