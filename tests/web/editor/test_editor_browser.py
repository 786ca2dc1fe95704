"""The pipeline editor in a real browser (Debian's chromium, Playwright): build, reorder, lint, YAML, save, run.

Role/label locators, waits on what the page shows. The repositories are real: a loopback smart-HTTP
git server that demands the pipeline's token (tests/web/conftest.py `git_repo`)."""
from __future__ import annotations

import re
import subprocess

import pytest
from playwright.sync_api import expect

from tests.web.conftest import screenshot
from tests.web.editor.conftest import PIPELINE_YAML

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def make_pipeline(project, url, username, token, name="app"):
    from devops.models import Pipeline, SourceCodeCredential

    cred = SourceCodeCredential.objects.create(project=project, name=f"{name}-cred", source_code_type="git",
                                               login_name=username, access_token=token)
    return Pipeline.objects.create(project=project, name=name, repository_url=url, default_branch="main",
                                   credential=cred)


def open_editor(page, pipe, branch="main"):
    page.goto(f"/p/{pipe.project_id}/pipelines/{pipe.name}/edit?branch={branch}")
    expect(page.get_by_role("tab", name="Visual")).to_have_attribute("aria-selected", "true")


def wait_idle(page):
    """The last request's answer is in: the status line says how many errors."""
    expect(page.locator("#ed-status")).to_have_text(re.compile(r"^(No errors|\d+ errors?)$"))


def yaml_text(page) -> str:
    return page.locator("#save-form input[name=text]").input_value()


def panel_field(page, label: str):
    return page.locator(".ed-panel").get_by_role("textbox", name=re.compile(f"^{label}( \\(required\\))?$"))


def stage_names(page) -> list[str]:
    return page.locator("#ed-stages > li.ed-stage .ed-stage-head .ed-stage-name").all_inner_texts()


def step_labels(page, stage: str) -> list[str]:
    return page.get_by_role("listitem", name=f"Stage {stage}").locator(".ed-card-label").all_inner_texts()


def drag(page, source, target, *, below: bool = False):
    """Drag with the mouse as a person does: press on the handle, move in steps, release on the target
    (SortableJS's fallback mode follows mouse events)."""
    a = source.bounding_box()
    b = target.bounding_box()
    page.mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move(a["x"] + a["width"] / 2 + 5, a["y"] + a["height"] / 2 + 5, steps=3)
    y = b["y"] + (b["height"] * 0.8 if below else b["height"] * 0.2)
    page.mouse.move(b["x"] + b["width"] / 2, y, steps=15)
    page.mouse.move(b["x"] + b["width"] / 2 + 1, y + 1, steps=2)
    page.mouse.up()


def add_stage(page, name: str):
    page.get_by_label("New stage name").fill(name)
    page.get_by_role("button", name="Add stage").click()
    expect(page.get_by_role("listitem", name=f"Stage {name}")).to_be_visible()
    wait_idle(page)


def add_run_step(page, stage: str, image: str, script: str):
    column = page.get_by_role("listitem", name=f"Stage {stage}")
    column.get_by_label(f"Type of the new step in {stage}").select_option("runScriptConfig")
    column.get_by_role("button", name="Add step").click()
    image_field = panel_field(page, "Image")
    expect(image_field).to_be_focused()  # the new step opens in the side panel
    wait_idle(page)
    image_field.fill(image)
    image_field.press("Tab")
    wait_idle(page)
    script_field = panel_field(page, "Shell script")
    script_field.fill(script)
    script_field.press("Tab")
    wait_idle(page)


def test_build_a_three_stage_pipeline_reorder_fix_lint_switch_views_commit_and_run(
        page_as, web_project, served_repo, personas, axe_check):
    from devops.models import PipelineExecution
    from tests.controller.conftest import git

    url, username, token, bare = served_repo({"README.md": b"hello\n"})
    pipe = make_pipeline(web_project, url, username, token)
    start = git(bare, "rev-parse", "main")
    page = page_as("bob")
    open_editor(page, pipe)
    expect(page.locator("#ed-source")).to_contain_text("main has no pipeline file")
    # from nothing: the starter's stage goes, then three stages are built
    page.get_by_role("button", name="Delete stage Build").click()
    expect(page.locator("#ed-stages > li")).to_have_count(0)
    wait_idle(page)
    add_stage(page, "Build")
    # a stage without steps is an error, shown on its column, and Save is blocked
    expect(page.get_by_role("listitem", name="Stage Build").locator(".ed-problem")).to_be_visible()
    expect(page.get_by_role("button", name="Save…")).to_be_disabled()
    column = page.get_by_role("listitem", name="Stage Build")
    column.get_by_role("button", name="Add step").click()
    # the new step's required image is empty: lint's problem is on that very field and on its card
    image = panel_field(page, "Image")
    expect(image).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".ed-panel .ed-field.invalid .ed-field-problem").first).to_contain_text("image")
    expect(column.locator(".ed-card.has-problems")).to_have_count(1)
    expect(page.get_by_role("button", name=re.compile(r"stages\[0\]\.steps\[0\]\.runScriptConfig\.image"))) \
        .to_be_visible()  # ...and in the problem list, with its path
    image.fill("golang:1.22")
    image.press("Tab")
    wait_idle(page)
    expect(panel_field(page, "Image")).not_to_have_attribute("aria-invalid", "true")
    expect(column.locator(".ed-card.has-problems")).to_have_count(0)
    script = panel_field(page, "Shell script")
    script.fill("go build ./...")
    script.press("Tab")
    wait_idle(page)
    add_stage(page, "Test")
    add_run_step(page, "Test", "golang:1.22", "go test ./...")
    add_stage(page, "Publish")
    add_run_step(page, "Publish", "alpine:3.20", "echo publish")
    expect(page.locator("#ed-status")).to_have_text("No errors")
    assert stage_names(page) == ["Build", "Test", "Publish"]
    assert step_labels(page, "Build") == ["Run script · golang:1.22"]

    # reorder by keyboard: the move buttons, focus stays on the moved item
    page.get_by_role("button", name="Move stage Publish left").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#ed-stages > li.ed-stage").nth(1)).to_have_attribute("aria-label", "Stage Publish")
    wait_idle(page)
    assert stage_names(page) == ["Build", "Publish", "Test"]
    expect(page.get_by_role("button", name="Move stage Publish left")).to_be_focused()  # it moves on
    page.get_by_role("button", name="Move step Run script alpine:3.20 to stage Test").click()
    wait_idle(page)
    assert step_labels(page, "Publish") == []
    assert step_labels(page, "Test") == ["Run script · alpine:3.20", "Run script · golang:1.22"]
    page.get_by_role("button", name="Move step Run script alpine:3.20 down").click()
    wait_idle(page)
    assert step_labels(page, "Test") == ["Run script · golang:1.22", "Run script · alpine:3.20"]

    # reorder by drag and drop: a step back into Publish, then the Test stage before Publish
    drag(page, page.get_by_role("listitem", name="Stage Test").locator(".ed-card").nth(1).locator(".ed-handle"),
         page.get_by_role("listitem", name="Stage Publish").locator(".ed-steps"))
    expect(page.get_by_role("listitem", name="Stage Publish").locator(".ed-card")).to_have_count(1)
    wait_idle(page)
    assert step_labels(page, "Publish") == ["Run script · alpine:3.20"]
    drag(page, page.get_by_role("listitem", name="Stage Test").locator(".ed-stage-handle"),
         page.get_by_role("listitem", name="Stage Publish").locator(".ed-stage-head"))
    expect(page.locator("#ed-stages > li.ed-stage").nth(1)).to_have_attribute("aria-label", "Stage Test")
    wait_idle(page)
    assert stage_names(page) == ["Build", "Test", "Publish"]
    # rename a stage in its side panel
    page.get_by_role("button", name="Publish", exact=True).click()
    name = panel_field(page, "Stage name")
    name.fill("Release")
    name.press("Tab")
    expect(page.get_by_role("listitem", name="Stage Release")).to_be_visible()
    wait_idle(page)
    page.get_by_role("button", name="Run script · alpine:3.20").click()
    expect(panel_field(page, "Image")).to_have_value("alpine:3.20")
    assert axe_check(page) == []  # with a step's whole form open

    # the YAML tab holds the same document; an edit there shows in the visual view
    page.get_by_role("tab", name="YAML").click()
    editor = page.get_by_role("textbox", name="Pipeline YAML")
    expect(editor).to_contain_text("- name: Build")
    expect(page.locator(".cm-gutters .cm-lineNumbers")).to_be_visible()
    text = yaml_text(page)
    assert text.index("name: Build") < text.index("name: Test") < text.index("name: Release")
    editor.click()
    page.keyboard.press("Control+Home")
    page.keyboard.type("# built in the visual editor\n")
    page.get_by_role("tab", name="Visual").click()
    wait_idle(page)
    assert stage_names(page) == ["Build", "Test", "Release"]
    assert yaml_text(page).startswith("# built in the visual editor\n")
    screenshot(page, "editor-visual")

    # Save: the diff first, then a commit to main (author: the user, parent: the head the editor opened)
    page.get_by_role("button", name="Save…").click()
    dialog = page.get_by_role("dialog", name="Save .devops.yml")
    expect(dialog.locator("#save-diff")).to_contain_text("+# built in the visual editor")
    dialog.get_by_label("Commit message").fill("Three stages, from the editor")
    dialog.get_by_role("button", name="Commit to main").click()
    expect(page.get_by_text(re.compile(r"Committed \.devops\.yml to main"))).to_be_visible()
    committed = yaml_text(page)
    head = git(bare, "rev-parse", "main")
    assert head != start
    assert git(bare, "rev-parse", "main^") == start
    assert git(bare, "log", "-1", "--format=%an|%s", "main") == "bob|Three stages, from the editor"
    assert committed == "# built in the visual editor\n" + text
    assert git(bare, "show", "main:.devops.yml") == committed.strip()
    expect(page.locator("#ed-source")).to_contain_text(head[:10])

    # run it: an edited config, without committing; the run page marks it and shows its YAML
    page.get_by_role("tab", name="YAML").click()
    editor.click()
    page.keyboard.press("Control+End")
    page.keyboard.type("timeout: 30\n")
    page.get_by_role("tab", name="Visual").click()
    wait_idle(page)
    page.get_by_role("button", name="Save…").click()
    dialog.get_by_role("button", name="Run on main without committing").click()
    expect(page).to_have_url(re.compile(r"/runs/1/$"))
    run = PipelineExecution.objects.get(pipeline=pipe, run=1)
    assert run.temporary_config
    assert run.config_text == committed + "timeout: 30\n"
    assert git(bare, "rev-parse", "main") == head  # nothing committed
    expect(page.get_by_text("Success").first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("temporary config")).to_be_visible()
    page.get_by_role("link", name="View config").click()
    expect(page.get_by_text("A temporary config (run without being committed)")).to_be_visible()
    expect(page.locator("#config-text")).to_contain_text("timeout: 30")


def test_the_side_panel_writes_pipeline_stage_and_step_settings(page_as, web_project, served_repo):
    from devops.models import Secret

    Secret.objects.create(project=web_project, name="db", data={"password": "never-shown-9f1"})
    url, username, token, _bare = served_repo({".devops.yml": PIPELINE_YAML.encode()})
    pipe = make_pipeline(web_project, url, username, token)
    page = page_as("bob")
    open_editor(page, pipe)
    panel = page.locator(".ed-panel")
    # the pipeline: timeout, a branch rule, cache on
    panel.get_by_role("spinbutton", name="Timeout (minutes)").fill("30")
    panel.get_by_role("spinbutton", name="Timeout (minutes)").press("Tab")
    wait_idle(page)
    branches = panel.get_by_role("group", name="Branches")
    branches.get_by_label("Branch pattern").first.fill("main")
    branches.get_by_role("button", name="Add include").click()
    wait_idle(page)
    panel.get_by_role("combobox", name="Cache", exact=True).select_option("on")
    wait_idle(page)
    # a step: an env var, a secret's key, a `when` event rule, a variable inserted into the image
    page.get_by_role("button", name="Run script · golang:1.22").nth(1).click()
    env = panel.get_by_role("group", name="Environment variables")
    env.get_by_label("Name").fill("GOFLAGS")
    env.get_by_label("Value").fill("-mod=vendor")
    env.get_by_role("button", name="Add").click()
    wait_idle(page)
    secrets = panel.get_by_role("group", name="Environment from secrets")
    secrets.get_by_label("Secret").select_option("db")
    secrets.get_by_label("Key").fill("password")
    secrets.get_by_label("As variable (optional)").fill("DB_PASSWORD")
    secrets.get_by_role("button", name="Add").click()
    wait_idle(page)
    event = panel.get_by_role("group", name="When: event")
    event.get_by_label("Event").first.fill("push")
    event.get_by_role("button", name="Add include").click()
    wait_idle(page)
    image = panel_field(page, "Image")
    image.click()
    image.press("End")
    image.type("-")
    panel.get_by_label("Insert a variable into Image").select_option("CICD_GIT_BRANCH")
    wait_idle(page)
    text = yaml_text(page)
    assert "\ntimeout: 30\n" in text
    assert "branch:\n  include:\n  - main\n" in text or "branch:\n  include: [main]" in text
    assert "\ncache: true\n" in text
    assert "      image: golang:1.22-${CICD_GIT_BRANCH}\n" in text
    assert "GOFLAGS: -mod=vendor" in text
    assert "sourceName: db" in text and "sourceKey: password" in text and "targetKey: DB_PASSWORD" in text
    assert "never-shown" not in page.content()
    expect(page.locator("#ed-status")).to_have_text("No errors")
    # comments stay with what they describe
    assert "      image: golang:1.22   # the toolchain\n" in text and text.startswith("# Build and test\n")


RANCHER = "009-yasshi2525__edelweiss-devops.yml"  # comments, a leading comment block, `[ push, pull_request ]`


def test_a_real_commented_rancher_file_changes_in_the_one_line_edited(page_as, web_project, served_repo,
                                                                      fixtures_dir):
    from tests.controller.conftest import git

    original = (fixtures_dir / "rancher-pipelines" / RANCHER).read_bytes()
    url, username, token, bare = served_repo({".rancher-pipeline.yml": original})
    pipe = make_pipeline(web_project, url, username, token)
    page = page_as("alice")
    open_editor(page, pipe)
    expect(page.locator("#ed-source")).to_contain_text(".rancher-pipeline.yml at the head of main")
    # open → nothing changed → the Save dialog says so, byte for byte
    page.get_by_role("button", name="Save…").click()
    dialog = page.get_by_role("dialog", name="Save .rancher-pipeline.yml")
    expect(dialog).to_contain_text("No change: the text is byte-identical")
    dialog.get_by_role("button", name="Cancel").click()
    # change one image in the side panel
    page.locator("#ed-stages > li").first.locator(".ed-card-label").first.click()
    image = panel_field(page, "Image")
    expect(image).to_have_value("alpine")
    image.fill("alpine:3.20")
    image.press("Tab")
    wait_idle(page)
    page.get_by_role("button", name="Save…").click()
    expect(dialog.locator("#save-diff .add")).to_have_count(1)  # the one line
    expect(dialog.locator("#save-diff .del")).to_have_count(1)
    dialog.get_by_label("Commit message").fill("alpine:3.20")
    dialog.get_by_role("button", name="Commit to main").click()
    expect(page.get_by_text(re.compile(r"Committed \.rancher-pipeline\.yml to main"))).to_be_visible()
    committed = subprocess.run(["git", "show", "main:.rancher-pipeline.yml"], cwd=bare, check=True,
                               capture_output=True).stdout
    before, after = original.split(b"\n"), committed.split(b"\n")
    assert len(before) == len(after)
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed == [(b"          image: alpine", b"          image: alpine:3.20")]
    assert git(bare, "log", "-1", "--format=%an", "main") == "alice"


def test_read_only_members_read_both_views_and_change_nothing(page_as, web_project, served_repo):
    url, username, token, _bare = served_repo({".devops.yml": PIPELINE_YAML.encode()})
    pipe = make_pipeline(web_project, url, username, token)
    page = page_as("ronnie")
    open_editor(page, pipe)
    expect(page.get_by_role("button", name="Run script · golang:1.22").first).to_be_visible()
    expect(page.get_by_role("button", name="Save…")).to_have_count(0)
    expect(page.get_by_role("button", name="Add stage")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^Move "))).to_have_count(0)
    page.get_by_role("button", name="Run script · golang:1.22").first.click()
    expect(panel_field(page, "Image")).to_be_disabled()
    page.get_by_role("tab", name="YAML").click()
    expect(page.get_by_role("textbox", name="Pipeline YAML")).to_have_attribute("aria-readonly", "true")


def test_yaml_edits_are_linted_as_you_type_with_markers_in_the_gutter(page_as, web_project, served_repo,
                                                                     axe_check):
    url, username, token, _bare = served_repo({".devops.yml": PIPELINE_YAML.encode()})
    pipe = make_pipeline(web_project, url, username, token)
    page = page_as("bob")
    open_editor(page, pipe)
    assert axe_check(page) == []
    page.get_by_role("tab", name="YAML").click()
    expect(page.get_by_role("textbox", name="Pipeline YAML")).to_be_visible()
    # make line 10's image empty: lint marks that line, lists the problem, blocks Save
    line = page.locator(".cm-line").filter(has_text="image: golang:1.22").nth(1)
    line.click()
    page.keyboard.press("End")
    for _ in range(len("golang:1.22")):
        page.keyboard.press("Backspace")
    expect(page.locator("#ed-status")).to_have_text("1 error")
    expect(page.locator(".cm-gutter-lint .cm-lint-marker-error")).to_have_count(1)
    expect(page.get_by_role("button", name="stages[1].steps[0].runScriptConfig.image")).to_be_visible()
    expect(page.get_by_role("button", name="Save…")).to_be_disabled()
    assert axe_check(page) == []
    screenshot(page, "editor-yaml")
    # the visual view shows the same problem on the field and its card
    page.get_by_role("tab", name="Visual").click()
    page.get_by_role("button", name="stages[1].steps[0].runScriptConfig.image").click()
    field = panel_field(page, "Image")
    expect(field).to_be_focused()
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("listitem", name="Stage Test").locator(".ed-card.has-problems")).to_have_count(1)
    editor_text = yaml_text(page)
    assert "  - runScriptConfig:\n      image: \n      shellScript: go test" in editor_text
