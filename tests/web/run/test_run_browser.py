"""The execution page in chromium against a live daphne + a separate controller (no Redis).

Every wait is on the page (Playwright's auto-waiting `expect`) or on the
committed state; nothing sleeps to assert.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.web.run.conftest import make_config, new_execution

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LIVE = 30_000  # ms: generous bounds for a shared 2-core machine; latency figures are the bench's


def _path(e) -> str:
    return f"/p/{e.project_id}/pipelines/{e.pipeline.name}/runs/{e.run}/"


def _step_state(page, stage: int, step: int):
    return page.locator(f"#step-{stage}-{step} .state")


def test_steps_go_building_to_success_live_after_rerun_and_hostile_text_stays_text(pipeline, slipway, page_as):
    first = new_execution(pipeline, make_config([{"SLIPWAY_DUMMY_SLEEP": "3"}]),
                          branch="<script>alert(1)</script>", message='<img src=x onerror="alert(2)">')
    slipway.start()
    page = page_as("bob")
    page.goto(_path(first))
    expect(page.locator(".run-facts .branch")).to_have_text("<script>alert(1)</script>")
    expect(page.locator(".run-facts .message")).to_have_text('<img src=x onerror="alert(2)">')
    expect(page.locator("#run-state")).to_have_text("Success", timeout=LIVE)

    page.get_by_role("button", name="Rerun").click()               # a new run; the browser goes there
    page.wait_for_url("**/runs/2/")
    page.evaluate("window.__notReloaded = true")
    expect(_step_state(page, 1, 0)).to_have_text("Building", timeout=LIVE)
    expect(page.locator("#run-state")).to_have_text("Building")
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    expect(page.locator("#step-1-0")).to_have_attribute("aria-current", "true", timeout=LIVE)  # its log
    # the running step's log viewer is loaded into the pane (ui-logs' fragment)
    expect(page.locator('#log-pane [data-log-viewer][data-stage="1"][data-step="0"]')).to_be_attached(timeout=LIVE)
    expect(_step_state(page, 1, 0)).to_have_text("Success", timeout=LIVE)
    expect(page.locator("#run-state")).to_have_text("Success")
    expect(page.get_by_role("button", name="Rerun")).to_be_visible()
    assert page.evaluate("window.__notReloaded") is True          # all of it pushed, no reload
    expect(page.locator("#step-1-0 .step-duration")).not_to_be_empty()
    assert page.dialogs == []                                     # no injected script ever ran


def test_stop_a_long_run_and_read_only_members_see_no_write_control(pipeline, slipway, page_as):
    long = new_execution(pipeline, make_config([{"SLIPWAY_DUMMY_SLEEP": "600"}]))
    slipway.start()
    ronnie = page_as("ronnie")
    ronnie.goto(_path(long))
    bob = page_as("bob")
    bob.goto(_path(long))
    expect(_step_state(bob, 1, 0)).to_have_text("Building", timeout=LIVE)
    expect(ronnie.get_by_role("button", name=re.compile("^(Stop|Rerun)$"))).to_have_count(0)  # no write control
    bob.evaluate("window.__notReloaded = true")

    bob.get_by_role("button", name="Stop").click()
    expect(bob.locator("#run-state")).to_have_text("Aborted", timeout=LIVE)
    expect(_step_state(bob, 1, 0)).to_have_text("Aborted")
    expect(bob.get_by_role("button", name="Rerun")).to_be_visible()
    assert bob.evaluate("window.__notReloaded") is True
    expect(ronnie.locator("#run-state")).to_have_text("Aborted", timeout=LIVE)   # pushed to every viewer
    expect(ronnie.get_by_role("button", name=re.compile("^(Stop|Rerun)$"))).to_have_count(0)


def test_a_reconnect_after_the_server_dropped_catches_up_without_a_reload(pipeline, slipway, page_as):
    run = new_execution(pipeline, make_config([{"SLIPWAY_DUMMY_SLEEP": "600"}]))
    slipway.start()
    page = page_as("ronnie")
    page.goto(_path(run))
    expect(_step_state(page, 1, 0)).to_have_text("Building", timeout=LIVE)
    page.evaluate("window.__notReloaded = true")

    slipway.kill_web()                                             # the socket drops (1006)
    expect(page.locator("body")).to_have_attribute("data-live", "closed", timeout=LIVE)
    slipway.stop_run(run.name)                                     # committed while the page is cut off
    assert slipway.execution_state(run.name) == "Aborted"
    expect(page.locator("#run-state")).to_have_text("Building")    # nothing could tell the page

    slipway.start_web()                                            # same port: the page reconnects by itself
    expect(page.locator("#run-state")).to_have_text("Aborted", timeout=LIVE)
    expect(_step_state(page, 1, 0)).to_have_text("Aborted")
    assert page.evaluate("window.__notReloaded") is True


def test_after_rerun_the_new_runs_page_follows_its_running_step_until_the_user_picks_one(
        pipeline, slipway, page_as):
    """The pane follows the run's default step (running, else failed) as the run moves on; before,
    it stayed on whichever step it first showed (the Clone, or the first running step)."""
    steps = make_config([{"SLIPWAY_DUMMY_SLEEP": "3", "SLIPWAY_DUMMY_OUTPUT": "first step's line"}],
                        [{"SLIPWAY_DUMMY_SLEEP": "600", "SLIPWAY_DUMMY_OUTPUT": "second step's line"}])
    first = new_execution(pipeline, steps)
    slipway.start()
    page = page_as("bob")
    page.goto(_path(first))
    expect(_step_state(page, 2, 0)).to_have_text("Building", timeout=LIVE)
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#run-state")).to_have_text("Aborted", timeout=LIVE)

    page.get_by_role("button", name="Rerun").click()
    page.wait_for_url("**/runs/2/")
    page.evaluate("window.__notReloaded = true")
    pane = page.locator("#log-pane")
    expect(page.locator("#step-1-0")).to_have_attribute("aria-current", "true", timeout=LIVE)
    expect(pane.locator('[data-log-viewer][data-stage="1"][data-step="0"]')).to_be_attached()
    expect(pane.get_by_role("log")).to_contain_text("first step's line", timeout=LIVE)
    # the next stage starts: the pane moves to it by itself, without a history entry
    expect(page.locator("#step-2-0")).to_have_attribute("aria-current", "true", timeout=LIVE)
    expect(pane.locator('[data-log-viewer][data-stage="2"][data-step="0"]')).to_be_attached()
    expect(pane.get_by_role("log")).to_contain_text("second step's line", timeout=LIVE)
    assert page.url.endswith("/runs/2/")
    assert page.evaluate("window.__notReloaded") is True

    page.locator("#step-1-0").click()                              # the user's choice wins from now on
    expect(pane.locator('[data-log-viewer][data-stage="1"][data-step="0"]')).to_be_attached()
    expect(page.locator("#log-pane")).to_have_attribute("data-auto", "false")
    expect(page.locator("#step-1-0")).to_have_attribute("aria-current", "true")


def test_the_pipeline_and_project_lists_update_live(pipeline, slipway, page_as):
    long = new_execution(pipeline, make_config([{"SLIPWAY_DUMMY_SLEEP": "600"}]))
    slipway.start()
    lists, home = page_as("ronnie"), page_as("ronnie")
    lists.goto(f"/p/{long.project_id}/")
    home.goto("/")
    row, project = lists.locator(f"#pipeline-{pipeline.name}"), home.locator(f"#project-{long.project_id}")
    expect(row).to_contain_text("Building", timeout=LIVE)
    expect(project).to_contain_text("Building", timeout=LIVE)
    for page in (lists, home):
        page.evaluate("window.__notReloaded = true")
    slipway.stop_run(long.name)                                    # committed in a third process
    expect(row).to_contain_text("Aborted", timeout=LIVE)
    expect(project).to_contain_text("Aborted", timeout=LIVE)
    assert lists.evaluate("window.__notReloaded") is True and home.evaluate("window.__notReloaded") is True
