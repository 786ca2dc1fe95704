"""The pages in a real browser: personas, adding and running a pipeline, settings errors, XSS, axe-core,
phone width, and the README's screenshots. Playwright's role/label locators; waits are on events."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from devops.models import DEFAULT_SETTINGS
from tests.api.conftest import add_execution
from tests.web.conftest import screenshot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.fixture
def demo(web_project):
    """The demo project with one pipeline and two runs (Success on main, Failed on dev)."""
    from devops.models import Pipeline

    pipe = Pipeline.objects.create(project=web_project, name="app", display_name="app",
                                   repository_url="https://git.example/acme/app.git", default_branch="main")
    add_execution(pipe, 1)
    add_execution(pipe, 2, state="Failed", branch="dev")
    Pipeline.objects.filter(pk=pipe.pk).update(next_run=3, last_execution_id="app-2", last_run_state="Failed")
    return web_project, pipe


def no_alerts(page) -> list[str]:
    """Collect any JavaScript dialog (an XSS payload that ran would open one)."""
    seen: list[str] = []
    page.on("dialog", lambda d: (seen.append(d.message), d.dismiss()))
    return seen


def test_anonymous_users_sign_in_on_the_login_page_and_land_on_their_projects(page_as, demo, personas):
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    # The server checks with its own hashers (the tests' MD5 one is this process's only).
    hasher = PBKDF2PasswordHasher()
    personas["ronnie"].password = hasher.encode("ronnie-pw", hasher.salt(), iterations=1000)
    personas["ronnie"].save(update_fields=["password"])
    page = page_as(None)
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))
    expect(page.get_by_text("Sign-up is closed on this Slipway")).to_be_visible()
    page.get_by_label("Username").fill("ronnie")
    page.get_by_label("Password").fill("ronnie-pw")
    page.get_by_role("button", name="Sign In").click()
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    expect(page.get_by_role("link", name="demo")).to_be_visible()


def test_each_persona_sees_what_the_role_allows(page_as, demo):
    project, pipe = demo
    # bob (member): Run on every pipeline, Add pipeline; settings readable, not writable
    bob = page_as("bob")
    bob.goto(f"/p/{project.id}/")
    row = bob.get_by_role("row", name=re.compile(r"^app "))
    expect(row.get_by_role("button", name="Run")).to_be_visible()
    expect(row).to_contain_text("Failed #2")
    expect(bob.get_by_role("link", name="Add pipeline")).to_be_visible()
    bob.goto(f"/p/{project.id}/settings/")
    expect(bob.get_by_role("heading", name="Settings")).to_be_visible()
    expect(bob.get_by_role("button", name="Save", exact=True)).to_have_count(0)
    expect(bob.get_by_role("button", name="Save secret")).to_be_visible()
    # ronnie (read-only): everything visible, no write control anywhere
    ronnie = page_as("ronnie")
    for url in (f"/p/{project.id}/", f"/p/{project.id}/pipelines/{pipe.name}/", f"/p/{project.id}/settings/"):
        ronnie.goto(url)
        expect(ronnie.get_by_role("main")).to_contain_text("app" if "settings" not in url else "executor-quota")
        expect(ronnie.get_by_role("button", name="Run")).to_have_count(0)
        expect(ronnie.get_by_role("button", name="Delete")).to_have_count(0)
        expect(ronnie.get_by_role("button", name=re.compile("^Save"))).to_have_count(0)
    # alice (owner): settings are hers to change
    alice = page_as("alice")
    alice.goto(f"/p/{project.id}/settings/")
    expect(alice.get_by_role("button", name="Save", exact=True)).to_have_count(len(DEFAULT_SETTINGS))
    expect(alice.get_by_role("button", name="Add member")).to_be_visible()
    # charlie (no access): the project is not listed and every URL under it is 404
    charlie = page_as("charlie")
    charlie.goto("/")
    expect(charlie.get_by_role("link", name="demo")).to_have_count(0)
    for url in (f"/p/{project.id}/", f"/p/{project.id}/pipelines/{pipe.name}/", f"/p/{project.id}/settings/",
                f"/p/{project.id}/pipelines/new"):
        assert charlie.goto(url).status == 404, url


def test_add_a_pipeline_from_a_git_repository_and_run_it_from_the_dialog(page_as, web_project, git_repo):
    from devops.models import PipelineExecution

    url, username, token = git_repo(message="Add the pipeline")
    page = page_as("bob")
    page.goto(f"/p/{web_project.id}/")
    page.get_by_role("link", name="Add pipeline").click()
    page.get_by_label("Git URL").fill(url)
    page.get_by_label("Name", exact=True).fill("webapp")
    page.get_by_label("Default branch").fill("main")
    page.get_by_role("radio", name="Access token").check()
    page.get_by_label("User name (for the token)").fill(username)
    page.get_by_label("Token", exact=True).fill(token)
    page.get_by_role("button", name="Add pipeline").click()
    expect(page.get_by_role("heading", name="webapp", exact=True)).to_be_visible()
    expect(page.get_by_text("Pipeline webapp added.")).to_be_visible()

    page.get_by_role("button", name="Run").click()
    dialog = page.get_by_role("dialog", name="Run webapp")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Branch")).to_have_value("main")
    dialog.get_by_role("button", name="Start run").click()
    # straight to the run just started (303 to its page), not back to the list
    expect(page).to_have_url(re.compile(rf"/p/{web_project.id}/pipelines/webapp/runs/1/$"))
    expect(page.get_by_text("Run #1 started on main.")).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text("Add the pipeline")  # the commit message, read with the token
    execution = PipelineExecution.objects.get(pipeline__name="webapp", run=1)
    assert execution.trigger_user.username == "bob" and execution.branch == "main"
    # the list has it too, with who started it
    page.go_back()
    page.reload()
    row = page.locator("#run-1")
    expect(row).to_contain_text("user by bob")
    expect(page.locator("#run-1 .state")).to_have_text(re.compile("Waiting|Building|Success"))


def test_the_run_button_on_the_project_page_opens_the_new_run(page_as, web_project, git_repo):
    from devops.models import Pipeline, SourceCodeCredential

    url, username, token = git_repo()
    cred = SourceCodeCredential.objects.create(project=web_project, name="c", source_code_type="git",
                                               login_name=username, access_token=token)
    Pipeline.objects.create(project=web_project, name="app", repository_url=url, default_branch="main",
                            credential=cred, next_run=4)
    page = page_as("bob")
    page.goto(f"/p/{web_project.id}/")
    page.get_by_role("row", name=re.compile(r"^app ")).get_by_role("button", name="Run").click()
    page.get_by_role("dialog", name="Run app").get_by_role("button", name="Start run").click()
    expect(page).to_have_url(re.compile(rf"/p/{web_project.id}/pipelines/app/runs/4/$"))
    expect(page.get_by_role("heading", name=re.compile(r"^Run 4\b"))).to_be_visible()


def test_run_with_an_edited_config_that_is_invalid_lists_the_problems(page_as, web_project, git_repo):
    from devops.models import Pipeline, SourceCodeCredential

    url, username, token = git_repo()
    cred = SourceCodeCredential.objects.create(project=web_project, name="c", source_code_type="git",
                                               login_name=username, access_token=token)
    Pipeline.objects.create(project=web_project, name="app", repository_url=url, default_branch="main",
                            credential=cred)
    page = page_as("alice")
    page.goto(f"/p/{web_project.id}/pipelines/app/")
    page.get_by_role("button", name="Run").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Use an edited config").fill("stages:\n- name: B\n  steps:\n  - runScriptConfig: {}\n")
    dialog.get_by_role("button", name="Start run").click()
    expect(page.get_by_role("alert")).to_contain_text("Not started: .devops.yml is invalid")
    assert not web_project.executions.exists()


def test_a_bad_setting_value_shows_the_field_error(page_as, demo):
    project, _ = demo
    page = page_as("alice")
    page.goto(f"/p/{project.id}/settings/")
    row = page.locator("#setting-executor-quota")
    field = row.get_by_label("executor-quota")
    field.fill("lots")
    row.get_by_role("button", name="Save").click()
    error = page.locator("#error-executor-quota")
    expect(error).to_have_text("executor-quota: must be a positive integer, got 'lots'")
    expect(page.locator("#setting-executor-quota").get_by_label("executor-quota")).to_have_attribute("aria-invalid", "true")
    assert project.setting("executor-quota") == "2"
    page.locator("#setting-executor-quota").get_by_label("executor-quota").fill("3")
    page.locator("#setting-executor-quota").get_by_role("button", name="Save").click()
    expect(page.locator("#setting-executor-quota")).to_contain_text("Saved")
    expect(page.locator("#error-executor-quota")).to_have_count(0)
    assert project.setting("executor-quota") == "3"


XSS = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


def test_xss_attempts_in_names_branches_and_commit_messages_render_as_text(page_as, web_project):
    from devops.models import Pipeline, PipelineExecution

    pipe = Pipeline.objects.create(project=web_project, name="xss", display_name=f"pipe {XSS}",
                                   repository_url="https://git.example/x.git", default_branch="main")
    add_execution(pipe, 1, branch=f"br{XSS}")
    PipelineExecution.objects.filter(pipeline=pipe).update(message=f"msg {XSS}")
    Pipeline.objects.filter(pk=pipe.pk).update(last_execution_id="xss-1", next_run=2)
    page = page_as("alice")
    alerts = no_alerts(page)
    for url in ("/", f"/p/{web_project.id}/", f"/p/{web_project.id}/pipelines/xss/"):
        page.goto(url)
        expect(page.get_by_role("main")).to_be_visible()
        assert page.locator("main img, main script").count() == 0, url
    expect(page.get_by_role("heading", name=f"pipe {XSS}")).to_be_visible()
    expect(page.locator("#run-1")).to_contain_text(f"br{XSS}")
    expect(page.locator("#run-1")).to_contain_text(f"msg {XSS}")
    assert alerts == []


def test_no_serious_or_critical_accessibility_violations_and_phone_width(page_as, demo, axe_check, web_data_dir):
    project, pipe = demo
    run = _run_with_a_log(pipe, web_data_dir)
    runs = f"/p/{project.id}/pipelines/{pipe.name}/runs/{run.run}/"
    pages = ["/", f"/p/{project.id}/", f"/p/{project.id}/pipelines/new", f"/p/{project.id}/pipelines/{pipe.name}/",
             f"/p/{project.id}/pipelines/{pipe.name}/run", f"/p/{project.id}/settings/", "/account/tokens/",
             "/accounts/password/change/", "/accounts/logout/",
             runs, runs + "config", runs + "logs/1.1/"]                   # the run page with its log, the viewer
    problems = {}
    for width in (1280, 390):
        page = page_as("alice", width=width)
        for url in pages:
            page.goto(url)
            found = axe_check(page)
            if found:
                problems[f"{url} @{width}"] = found
            if width == 390:  # nothing wider than a phone's screen: no sideways scrolling
                overflow = page.evaluate("document.documentElement.scrollWidth")
                assert overflow <= 390, f"{url} is {overflow}px wide at 390px"
    anonymous = page_as(None)
    anonymous.goto("/accounts/login/")
    if found := axe_check(anonymous):
        problems["/accounts/login/"] = found
    # the Run dialog, open
    page = page_as("bob")
    page.goto(f"/p/{project.id}/pipelines/{pipe.name}/")
    page.get_by_role("button", name="Run").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    if found := axe_check(page):
        problems["run dialog"] = found
    assert problems == {}


def test_keyboard_reaches_run_and_focus_is_visible(page_as, demo):
    project, pipe = demo
    page = page_as("bob")
    page.goto(f"/p/{project.id}/pipelines/{pipe.name}/")
    run = page.get_by_role("button", name="Run")
    for _ in range(30):
        page.keyboard.press("Tab")
        if run.evaluate("b => b === document.activeElement"):
            break
    else:
        pytest.fail("Run is not reachable with Tab")
    outline = run.evaluate("b => getComputedStyle(b).outlineStyle + ' ' + getComputedStyle(b).outlineWidth")
    assert outline.startswith("solid") and not outline.endswith(" 0px")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Branch")).to_be_focused()


RUN_LOG = (b"\x1b[0Ksection_start:1700000000:deps\r\x1b[0K\x1b[1mInstall dependencies\x1b[0m\n"
           b"Collecting requests==2.32.3\n  Using cached requests-2.32.3-py3-none-any.whl\n"
           b"Successfully installed \x1b[32mrequests-2.32.3\x1b[0m\n"
           b"\x1b[0Ksection_end:1700000004:deps\r\x1b[0K\n"
           b"+ pytest -q\n"
           b"........................................................ [ 87%]\n"
           b"\x1b[31mF\x1b[0m.......                                                 [100%]\n"
           b"\x1b[1m=================== FAILURES ===================\x1b[0m\n"
           b"\x1b[31m\x1b[1m___ test_login_redirects ___\x1b[0m\n"
           b"    assert response.status_code == 302\n"
           b"\x1b[31mE   assert 200 == 302\x1b[0m\n"
           b"\x1b[33m1 failed\x1b[0m, \x1b[32m63 passed\x1b[0m in 4.21s\n"
           b"[slipway] step failed: exit code 1\n")


def _run_with_a_log(pipe, data_dir):
    """Run 9 of `pipe`: Build passed, Test failed, with the failed step's log in web_server's store."""
    from devops.logs import LogKey
    from devops.logs.filestore import FileLogStore
    from devops.models import StageStatus, StepStatus

    run = add_execution(pipe, 9, state="Failed", stages=2)
    StageStatus.objects.filter(execution=run, index=0).update(name="Build", state="Success")
    StageStatus.objects.filter(execution=run, index=1).update(name="Test")
    StepStatus.objects.filter(execution=run, stage_index=0).update(state="Success")
    StepStatus.objects.filter(execution=run, stage_index=1, index=0).update(state="Success", name="lint")
    StepStatus.objects.filter(execution=run, stage_index=1, index=1).update(name="pytest", exit_code=1)
    key = LogKey(run.name, 1, 1)
    path = data_dir / "logs" / key.path
    for old in path.parent.glob(path.stem + ".*"):     # the server's store is the session's: start afresh
        old.unlink()
    w = FileLogStore(data_dir / "logs").writer(key)
    w.write(RUN_LOG)
    w.close()
    return run


def test_screenshots_of_the_main_pages(page_as, demo, web_data_dir):
    """docs/screenshots/*.png at 1280 px, shown in the README's "The browser UI"."""
    from devops.models import Pipeline, Secret

    project, pipe = demo
    for n in range(3, 8):
        add_execution(pipe, n, state="Success" if n % 3 else "Failed", branch="main" if n % 2 else "feature/login",
                      stages=1)
    add_execution(pipe, 8, state="Building", stages=1)
    Pipeline.objects.filter(pk=pipe.pk).update(last_execution_id="app-8", last_run_state="Building", next_run=9)
    api = Pipeline.objects.create(project=project, name="api", display_name="api", default_branch="main",
                                  repository_url="https://git.example/acme/api.git", next_run=2,
                                  last_execution_id="api-1", last_run_state="Success")
    add_execution(api, 1, stages=1)
    Secret.objects.create(project=project, name="deploy", data={"TOKEN": "x"})
    page = page_as("alice")
    for name, url in (("projects", "/"), ("pipelines", f"/p/{project.id}/"),
                      ("pipeline", f"/p/{project.id}/pipelines/{pipe.name}/"),
                      ("new-pipeline", f"/p/{project.id}/pipelines/new"), ("settings", f"/p/{project.id}/settings/")):
        page.goto(url)
        expect(page.get_by_role("main")).to_be_visible()
        screenshot(page, name)
    run = _run_with_a_log(pipe, web_data_dir)                   # the run page, its failed step's log open
    page.goto(f"/p/{project.id}/pipelines/{pipe.name}/runs/{run.run}/")
    expect(page.locator("#step-1-1")).to_have_attribute("aria-current", "true")
    expect(page.get_by_role("log")).to_contain_text("1 failed, 63 passed")
    expect(page.locator('[id="s1.1-L10"]')).to_contain_text("test_login_redirects")
    screenshot(page, "run", full_page=True)
