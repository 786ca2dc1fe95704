"""The editor's views through Django's test client: membership, write level, ops, lint, save."""
from __future__ import annotations

import json
import re

import pytest

from tests.web.editor.conftest import PIPELINE_YAML, head_of

pytestmark = pytest.mark.django_db


def url(pipe, suffix: str = "") -> str:
    return f"/p/{pipe.project_id}/pipelines/{pipe.name}/edit{suffix}"


def login(client, personas, name):
    client.force_login(personas[name])
    return client


def test_the_page_opens_the_branch_file_at_its_head(client, personas, edit_pipeline):
    r = login(client, personas, "bob").get(url(edit_pipeline) + "?branch=main")
    assert r.status_code == 200
    body = r.content.decode()
    assert head_of(edit_pipeline.bare)[:10] in body
    assert "# Build and test" in body  # the text, as written, is in the page
    assert 'name="stages[0].name"' not in body  # the pipeline panel is shown first
    assert "Run script · <span class=\"mono\">golang:1.22</span>" in body
    assert "Save…" in body


def test_non_members_get_404_everywhere(client, personas, edit_pipeline):
    c = login(client, personas, "charlie")
    assert c.get(url(edit_pipeline)).status_code == 404
    for suffix in ("/op", "/lint", "/save"):
        assert c.post(url(edit_pipeline, suffix), {"text": PIPELINE_YAML}).status_code == 404


def test_read_only_members_see_the_file_and_no_write_control(client, personas, edit_pipeline):
    c = login(client, personas, "ronnie")
    r = c.get(url(edit_pipeline))
    assert r.status_code == 200
    body = r.content.decode()
    assert "Save…" not in body and "Add stage" not in body
    assert not re.search(r"<button[^>]*data-op", body)  # no move, delete or add button
    assert re.search(r'<input[^>]*name="timeout"[^>]*disabled', body)
    assert "golang:1.22" in body
    # lint (the YAML tab, read-only) works; ops and save do not
    assert c.post(url(edit_pipeline, "/lint"), {"text": PIPELINE_YAML}).status_code == 200
    op = json.dumps({"op": "set", "path": "stages[0].name", "value": "X"})
    assert c.post(url(edit_pipeline, "/op"), {"text": PIPELINE_YAML, "op": op}).status_code == 403
    assert c.post(url(edit_pipeline, "/save"), {"text": PIPELINE_YAML, "action": "run"}).status_code == 403


def test_an_op_returns_the_new_text_the_view_and_the_problems(client, personas, edit_pipeline):
    c = login(client, personas, "bob")
    op = json.dumps({"op": "set", "path": "stages[0].steps[0].runScriptConfig.image", "value": ""})
    r = c.post(url(edit_pipeline, "/op"), {"text": PIPELINE_YAML, "op": op, "selected": "stages[0].steps[0]"})
    assert r.status_code == 200
    data = r.json()
    assert "# the toolchain" in data["text"] and "golang:1.22   #" not in data["text"]
    assert data["errors"] >= 1
    paths = {p["path"] for p in data["problems"]}
    assert "stages[0].steps[0].runScriptConfig.image" in paths
    # the problem is on the input named by that path, and on its card
    assert 'name="stages[0].steps[0].runScriptConfig.image"' in data["visual"]
    assert 'aria-invalid="true" aria-describedby="f-stages-0-steps-0-runScriptConfig-image-err"' in data["visual"]
    assert "ed-card has-problems" in data["visual"]


@pytest.mark.parametrize("op, says", [
    ("not json", "op: not JSON"),
    (json.dumps({"op": "set", "path": "stages[9].name", "value": "x"}), "stages[9]"),
    (json.dumps({"op": "explode", "path": "stages"}), "op: "),
    (json.dumps([]), "op: one op or a list"),
])
def test_a_bad_op_is_a_400_naming_the_field(client, personas, edit_pipeline, op, says):
    r = login(client, personas, "bob").post(url(edit_pipeline, "/op"), {"text": PIPELINE_YAML, "op": op})
    assert r.status_code == 400
    assert r.json()["field"] == "op"
    assert says in r.json()["error"]


def test_an_op_without_text_is_a_400_naming_text(client, personas, edit_pipeline):
    r = login(client, personas, "bob").post(url(edit_pipeline, "/op"), {"op": "{}"})
    assert r.status_code == 400 and r.json()["field"] == "text"


def test_save_is_refused_while_lint_reports_an_error(client, personas, edit_pipeline):
    bad = PIPELINE_YAML.replace("image: golang:1.22   # the toolchain", "image: ''")
    r = login(client, personas, "bob").post(url(edit_pipeline, "/save"),
                                            {"text": bad, "action": "run", "branch": "main"})
    assert r.status_code == 400
    assert "fix them before saving" in r.content.decode()


def test_the_diff_comes_first(client, personas, edit_pipeline):
    new = PIPELINE_YAML.replace("go test ./...", "go test -race ./...")
    r = login(client, personas, "bob").post(url(edit_pipeline, "/save"), {
        "text": new, "action": "diff", "branch": "main", "head": head_of(edit_pipeline.bare),
        "filename": ".devops.yml", "fragment": "1"})
    assert r.status_code == 200
    body = r.content.decode()
    assert "-      shellScript: go test ./..." in body and "+      shellScript: go test -race ./..." in body
    assert "<html" not in body  # the dialog's box alone


def test_download_returns_the_text_as_a_file(client, personas, edit_pipeline):
    r = login(client, personas, "bob").post(url(edit_pipeline, "/save"), {
        "text": PIPELINE_YAML, "action": "download", "filename": ".devops.yml"})
    assert r.status_code == 200
    assert r.content.decode() == PIPELINE_YAML
    assert 'attachment; filename="devops.yml"' == r["Content-Disposition"]


ALL_TYPES = """\
stages:
- name: Everything
  steps:
  - runScriptConfig: {image: alpine, shellScript: echo}
    x-note: kept
  - publishImageConfig: {tag: "app:1"}
  - applyYamlConfig: {content: "kind: ConfigMap", namespace: web}
  - publishCatalogConfig: {path: ./chart, catalogTemplate: app}
  - applyAppConfig: {catalogTemplate: app, answers: {replicas: "2"}}
    envFrom:
    - {sourceName: db, sourceKey: password, targetKey: DB_PASSWORD}
"""


def test_the_side_panel_has_every_field_of_every_step_type_named_by_its_path(client, personas, edit_pipeline):
    from devops.models import Secret
    from devops.pipeline.kinds import STEP_KINDS

    Secret.objects.create(project=edit_pipeline.project, name="db", data={"password": "hunter2-secret-value"})
    c = login(client, personas, "bob")
    for i, kind in enumerate(("runScriptConfig", "publishImageConfig", "applyYamlConfig", "publishCatalogConfig",
                              "applyAppConfig")):
        r = c.post(url(edit_pipeline, "/lint"), {"text": ALL_TYPES, "selected": f"stages[0].steps[{i}]"})
        visual = r.json()["visual"]
        step = f"stages[0].steps[{i}]"
        for alias in STEP_KINDS[kind].fields:
            if alias == "answers":
                assert f'name="{step}.{kind}.answers.replicas"' in visual
            else:
                assert f'name="{step}.{kind}.{alias}"' in visual, (kind, alias)
        for common in ("privileged", "cpuRequest", "cpuLimit", "memoryRequest", "memoryLimit"):
            assert f'name="{step}.{common}"' in visual
        assert f'name="{step}.cache"' in visual  # cache on/off/inherit
        assert "When: branch" in visual and "When: event" in visual and "Environment variables" in visual
        # ${CICD_*} is offered where kinds.py substitutes it, never for the shell script
        for alias in STEP_KINDS[kind].substituted:
            if alias != "answers":
                assert f'data-insert-into="f-stages-0-steps-{i}-{kind}-{alias}"' in visual, (kind, alias)
        assert 'data-insert-into="f-stages-0-steps-0-runScriptConfig-shellScript"' not in visual
    # keys the form does not know are listed, read-only
    visual = c.post(url(edit_pipeline, "/lint"), {"text": ALL_TYPES, "selected": "stages[0].steps[0]"}).json()["visual"]
    assert "Kept as written" in visual and "x-note" in visual
    # envFrom offers the project's secret names and keys, never a value
    visual = c.post(url(edit_pipeline, "/lint"), {"text": ALL_TYPES, "selected": "stages[0].steps[4]"}).json()["visual"]
    assert 'name="stages[0].steps[4].envFrom[0].sourceKey" value="password"' in visual
    assert '<option value="password">db</option>' in visual
    assert "hunter2" not in visual


def test_commit_to_a_new_branch_then_refused_when_the_branch_moved(client, personas, edit_pipeline, tmp_path):
    from tests.controller.conftest import git

    c = login(client, personas, "bob")
    opened_at = head_of(edit_pipeline.bare)
    assert c.get(url(edit_pipeline)).status_code == 200
    new = PIPELINE_YAML.replace("go test ./...", "go test -race ./...")
    form = {"text": new, "action": "new-branch", "branch": "main", "head": opened_at, "filename": ".devops.yml",
            "message": "race", "new_branch": "race-tests"}
    # (b) a new branch at the head the editor opened, with the user as author
    r = c.post(url(edit_pipeline, "/save"), form)
    assert r.status_code == 302
    assert git(edit_pipeline.bare, "rev-parse", "race-tests^") == opened_at
    assert git(edit_pipeline.bare, "log", "-1", "--format=%an|%s", "race-tests") == "bob|race"
    assert git(edit_pipeline.bare, "show", "race-tests:.devops.yml") == new.strip()
    # the same new branch again: refused, it exists
    r = c.post(url(edit_pipeline, "/save"), form)
    assert r.status_code == 409 and "already exists" in r.content.decode()
    # someone else pushes to main meanwhile: the commit is refused, the page offers a reload
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(edit_pipeline.bare), str(other))
    (other / "NEWS").write_text("moved\n")
    git(other, "add", "NEWS")
    git(other, "commit", "-q", "-m", "meanwhile")
    git(other, "push", "-q", "origin", "main")
    moved = head_of(edit_pipeline.bare)
    r = c.post(url(edit_pipeline, "/save"), {**form, "action": "commit"})
    assert r.status_code == 409
    body = r.content.decode()
    assert "main moved since the editor opened" in body and "Reload the editor" in body
    assert head_of(edit_pipeline.bare) == moved  # nothing overwritten


def test_a_crlf_file_keeps_its_line_endings_through_an_op(client, personas, edit_pipeline):
    crlf = PIPELINE_YAML.replace("\n", "\r\n")
    op = json.dumps({"op": "set", "path": "stages[1].name", "value": "Check"})
    # the browser sends LF (CodeMirror) and says the file's ending
    r = login(client, personas, "bob").post(url(edit_pipeline, "/op"),
                                            {"text": PIPELINE_YAML, "op": op, "eol": "crlf"})
    assert r.status_code == 200
    assert r.json()["text"] == crlf.replace("- name: Test", "- name: Check")


def test_every_op_kind_from_the_controls_applies(client, personas, edit_pipeline):
    c = login(client, personas, "bob")
    ops = [
        {"op": "insert", "path": "stages[2]", "value": {"name": "Deploy", "steps": []}},
        {"op": "insert", "path": "stages[2].steps[0]", "value": {"applyYamlConfig": {"path": "./k8s.yaml"}}},
        {"op": "move", "from": "stages[2]", "to": "stages[0]"},
        {"op": "delete", "path": "stages[2]"},
    ]
    r = c.post(url(edit_pipeline, "/op"), {"text": PIPELINE_YAML, "op": json.dumps(ops)})
    assert r.status_code == 200
    data = r.json()
    assert [line for line in data["text"].splitlines() if "name:" in line] == ["- name: Deploy", "- name: Build"]
    assert "Deploy YAML · <span class=\"mono\">./k8s.yaml</span>" in data["visual"]
    assert data["errors"] == 0


def test_a_yaml_syntax_error_keeps_the_text_and_says_where(client, personas, edit_pipeline):
    broken = PIPELINE_YAML.replace("  steps:\n  - runScriptConfig:\n      image: golang:1.22   #",
                                   "  steps:\n  - runScriptConfig:\n     image: [golang:1.22   #", 1)
    r = login(client, personas, "bob").post(url(edit_pipeline, "/lint"), {"text": broken})
    assert r.status_code == 200
    data = r.json()
    assert data["text"] == broken  # nothing is lost while the file does not read
    assert "The visual view cannot show this file: line" in data["visual"]
    assert data["errors"] >= 1 and data["problems"][0]["line"] >= 5
    assert "(document)" in data["problems_html"] or data["problems"][0]["path"] in data["problems_html"]


def test_the_pipeline_page_links_to_the_editor(client, personas, edit_pipeline):
    page = f"/p/{edit_pipeline.project_id}/pipelines/{edit_pipeline.name}/"
    link = f'href="{url(edit_pipeline)}?branch=main">'
    body = login(client, personas, "bob").get(page).content.decode()
    assert link + "Edit</a>" in body
    client.logout()
    body = login(client, personas, "ronnie").get(page).content.decode()
    assert link + "View the pipeline file</a>" in body and link + "Edit</a>" not in body


def test_every_real_rancher_file_renders_in_the_visual_view(client, personas, edit_pipeline, fixtures_dir):
    """The 61 real files: each shows as stages and cards, every step's panel renders, nothing is 500."""
    from devops.web import editor_form

    c = login(client, personas, "bob")
    files = sorted((fixtures_dir / "rancher-pipelines").glob("*.yml"))
    assert len(files) > 50
    for f in files:
        text = f.read_bytes().decode("utf-8")
        model = editor_form.build(text, [])
        steps = [sp.path for st in model.stages for sp in st.steps]
        for selected in ["pipeline", *(st.path for st in model.stages), *steps]:
            r = c.post(url(edit_pipeline, "/lint"), {"text": text, "selected": selected})
            assert r.status_code == 200, (f.name, selected)
            assert r.json()["selected"] == selected, (f.name, selected)
        if not model.error:
            assert model.stages or "stages" not in text, f.name


def test_the_step_type_picker_changes_the_type_and_keeps_the_common_fields(client, personas, edit_pipeline):
    import html

    text = PIPELINE_YAML.replace("      shellScript: go build ./...\n", "      shellScript: go build ./...\n    env:\n      A: b\n")
    c = login(client, personas, "bob")
    visual = c.post(url(edit_pipeline, "/lint"), {"text": text, "selected": "stages[0].steps[0]"}).json()["visual"]
    m = re.search(r'<option value="Publish image" data-op="([^"]+)"', visual)
    op = html.unescape(m.group(1))
    data = c.post(url(edit_pipeline, "/op"), {"text": text, "op": op, "selected": "stages[0].steps[0]"}).json()
    assert "publishImageConfig:" in data["text"] and "golang:1.22   # the toolchain" not in data["text"]
    assert "  - env:\n      A: b\n    publishImageConfig:\n" in data["text"]
    assert data["selected"] == "stages[0].steps[0]"
    assert 'name="stages[0].steps[0].publishImageConfig.tag"' in data["visual"]


def test_hostile_text_in_the_file_stays_text(client, personas, edit_pipeline):
    text = PIPELINE_YAML.replace("- name: Build", "- name: '<img src=x onerror=alert(1)>'").replace(
        "go test ./...", "'\" onmouseover=alert(2) x=\"'")
    r = login(client, personas, "bob").post(url(edit_pipeline, "/lint"),
                                            {"text": text, "selected": "stages[1].steps[0]"})
    visual = r.json()["visual"]
    assert "<img src=x" not in visual and "&lt;img src=x onerror=alert(1)&gt;" in visual
    assert '" onmouseover=alert(2)' not in visual


def test_cards_and_columns_say_their_when_rules(client, personas, edit_pipeline, fixtures_dir):
    text = (fixtures_dir / "rancher-pipelines" / "009-yasshi2525__edelweiss-devops.yml").read_text(encoding="utf-8")
    visual = login(client, personas, "bob").post(url(edit_pipeline, "/lint"), {"text": text}).json()["visual"]
    assert "Only when branch master · event push, pull_request" in visual
