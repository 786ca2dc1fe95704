"""`POST /api/v1/lint` and `POST /api/v1/pipelinefiles/edit` (the editor's two calls)."""
from __future__ import annotations

import pytest

GOOD = "stages:\n- name: Build\n  steps:\n  - runScriptConfig:\n      image: busybox\n      shellScript: make\n"
# Missing image (error) in stage 0, step 0; an unknown key (warning).
BAD = "stages:\n- name: Build\n  steps:\n  - runScriptConfig:\n      shellScript: make\n    colour: red\n"


@pytest.fixture
def alice(client_as):
    return client_as("alice")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-yaml", "application/yaml"])
def test_lint_text_body(alice, content_type):
    response = alice.post("/api/v1/lint", GOOD, content_type=content_type)
    assert response.status_code == 200 and response.json() == {"ok": True, "problems": []}


def test_lint_reports_every_problem_with_path_line_column(alice):
    body = alice.post("/api/v1/lint", {"yaml": BAD, "filename": ".rancher-pipeline.yml"}, format="json").json()
    assert body["ok"] is False
    by_path = {p["path"]: p for p in body["problems"]}
    image = next(p for path, p in by_path.items() if "runScriptConfig" in path)
    assert image["severity"] == "error" and image["path"].startswith("stages[0].steps[0].runScriptConfig")
    assert image["line"] >= 4 and image["column"] >= 1 and "image" in image["message"]
    assert any(p["severity"] == "warning" and "colour" in p["path"] + p["message"] for p in body["problems"])
    assert set(image) == {"path", "line", "column", "severity", "message"}


def test_lint_syntax_error_and_bad_input(alice):
    body = alice.post("/api/v1/lint", "stages: [\n", content_type="text/plain").json()
    assert body["ok"] is False and body["problems"][0]["line"] >= 1
    assert alice.post("/api/v1/lint", {"nope": 1}, format="json").json().keys() == {"yaml"}
    bad_utf8 = alice.post("/api/v1/lint", b"stages: \xff\xfe", content_type="text/plain")
    assert bad_utf8.status_code == 400 and "yaml" in bad_utf8.json()


def test_lint_refuses_billion_laughs_quickly(alice):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(12)
    )
    body = alice.post("/api/v1/lint", bomb, content_type="text/plain").json()
    assert body["ok"] is False
    assert any("alias" in p["message"].lower() or "anchor" in p["message"].lower() for p in body["problems"])


def test_edit_keeps_comments_and_order(alice):
    original = "# build it\nstages:\n- name: Build  # the only stage\n  steps:\n  - runScriptConfig:\n      image: busybox\n      shellScript: make\ntimeout: 30\n"
    config = {
        "stages": [{"name": "Compile", "steps": [{"runScriptConfig": {"image": "busybox", "shellScript": "make"}}]}],
        "timeout": 30,
    }
    response = alice.post("/api/v1/pipelinefiles/edit", {"yaml": original, "config": config}, format="json")
    assert response.status_code == 200, response.content
    text = response.json()["yaml"]
    assert text.startswith("# build it\nstages:") and "name: Compile" in text and "# the only stage" in text
    assert text.index("stages:") < text.index("timeout:")
    assert response.json()["problems"] == []


def test_edit_bad_input_names_the_field(alice):
    broken = alice.post("/api/v1/pipelinefiles/edit", {"yaml": "stages: [\n", "config": {}}, format="json")
    assert broken.status_code == 400 and "yaml" in broken.json()
    not_a_mapping = alice.post("/api/v1/pipelinefiles/edit", {"yaml": GOOD, "config": [1]}, format="json")
    assert not_a_mapping.status_code == 400 and "config" in not_a_mapping.json()
    missing = alice.post("/api/v1/pipelinefiles/edit", {"yaml": GOOD}, format="json")
    assert missing.status_code == 400 and "config" in missing.json()


def test_lint_body_size_is_capped(alice, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    response = alice.post("/api/v1/lint", "a: " + "x" * 70_000, content_type="text/plain")
    assert response.status_code == 400 and "yaml" in response.json()
    under_the_cap = alice.post("/api/v1/lint", "a: " + "x" * 60_000, content_type="text/plain")
    assert under_the_cap.status_code == 200 and "problems" in under_the_cap.json()


@pytest.mark.parametrize("path", ["/api/v1/lint", "/api/v1/pipelinefiles/edit", "/api/v1/projects/"])
def test_json_nested_too_deep_is_a_400_not_a_crash(client_as, path):
    # 200 kB of `[`: Python's json module hits the recursion limit; that is bad input.
    body = '{"yaml": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = client_as("alice").post(path, body, content_type="application/json")
    assert response.status_code == 400, response.content[:200]
    assert "nest" in response.json()["detail"]


def test_edit_with_a_deeply_nested_config_is_answered(alice):
    config: dict = {"stages": []}
    for _ in range(400):  # within json's limit, beyond the pipeline file's 64 levels
        config = {"x": config}
    response = alice.post("/api/v1/pipelinefiles/edit", {"yaml": GOOD, "config": config}, format="json")
    assert response.status_code in (200, 400), response.content[:200]
