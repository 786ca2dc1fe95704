"""The permission matrix: every endpoint and method x alice/bob/ronnie/charlie/anonymous.

Levels: read (any member), write (owner or member), owner, auth (any signed-in
user, no project involved), file (as auth; a computation, so 200 not 201). Non-members get 404 on project URLs (a project's
existence is not revealed), anonymous 401/403.
"""
from __future__ import annotations

import pytest

ROLES = {"alice": "owner", "bob": "member", "ronnie": "read-only", "charlie": None}
LEVELS = {"read": {"owner", "member", "read-only"}, "write": {"owner", "member"}, "owner": {"owner"}}
OK = {"get": 200, "post": 201, "put": 200, "patch": 200, "delete": 204}

P = "/api/v1/projects/{project}/"
PIPELINE_SPEC = {"spec": {"repositoryUrl": "https://git.example/acme/new.git"}}
LINT = "stages:\n- name: Build\n  steps:\n  - runScriptConfig:\n      image: busybox\n      shellScript: make\n"

# (method, url, body, level)
ENDPOINTS = [
    ("get", "/api/v1/projects/", None, "auth"),
    ("post", "/api/v1/projects/", {"name": "another"}, "auth"),
    ("get", P, None, "read"),
    ("patch", P, {"description": "changed"}, "owner"),
    ("delete", P, None, "owner"),
    ("get", P + "members/", None, "read"),
    ("post", P + "members/", {"user": "charlie", "role": "read-only"}, "owner"),
    ("get", P + "members/bob/", None, "read"),
    ("patch", P + "members/bob/", {"role": "read-only"}, "owner"),
    ("delete", P + "members/ronnie/", None, "owner"),
    ("get", P + "settings/", None, "read"),
    ("get", P + "settings/executor-quota/", None, "read"),
    ("patch", P + "settings/executor-quota/", {"value": "3"}, "owner"),
    ("get", P + "secrets/", None, "read"),
    ("post", P + "secrets/", {"name": "new", "data": {"k": "v"}}, "write"),
    ("get", P + "secrets/registry/", None, "read"),
    ("put", P + "secrets/registry/", {"data": {"k": "v"}}, "write"),
    ("patch", P + "secrets/registry/", {"data": {"k": "v"}}, "write"),
    ("delete", P + "secrets/registry/", None, "write"),
    ("get", P + "pipelines/", None, "read"),
    ("post", P + "pipelines/", PIPELINE_SPEC, "write"),
    ("get", P + "pipelines/p-app01/", None, "read"),
    ("put", P + "pipelines/p-app01/", PIPELINE_SPEC, "write"),
    ("patch", P + "pipelines/p-app01/", {"spec": {"displayName": "x"}}, "write"),
    ("delete", P + "pipelines/p-app01/", None, "write"),
    ("get", P + "pipelines/p-app01/executions/", None, "read"),
    ("get", P + "pipelines/p-app01/executions/p-app01-1/", None, "read"),
    ("get", P + "executions/", None, "read"),
    ("get", P + "executions/p-app01-2/", None, "read"),
    ("get", P + "credentials/", None, "read"),
    ("get", P + "credentials/alice-github/", None, "read"),
    ("get", P + "repositories/", None, "read"),
    ("get", P + "repositories/{repository}/", None, "read"),
    ("post", "/api/v1/lint", {"yaml": LINT}, "file"),
    ("post", "/api/v1/pipelinefiles/edit", {"yaml": LINT, "config": {"stages": []}}, "file"),
]


def expected(level: str, persona: str | None, method: str) -> int | tuple[int, ...]:
    if persona is None:
        return (401, 403)
    if level == "auth":
        return OK[method]
    if level == "file":
        return 200
    role = ROLES[persona]
    if role is None:
        return 404
    return OK[method] if role in LEVELS[level] else 403


@pytest.mark.parametrize("persona", ["alice", "bob", "ronnie", "charlie", None])
@pytest.mark.parametrize(
    "method,url,body,level", ENDPOINTS, ids=[f"{m.upper()} {u}" for m, u, _b, _l in ENDPOINTS]
)
def test_matrix(world, client_as, persona, method, url, body, level):
    url = url.format(project=world["project"].id, repository=world["repository"].pk)
    response = getattr(client_as(persona), method)(url, body, format="json")
    want = expected(level, persona, method)
    assert response.status_code in (want if isinstance(want, tuple) else (want,)), response.content


def test_superuser_reads_and_writes_every_project(world, client_as, personas):
    personas["charlie"].is_superuser = True
    personas["charlie"].save()
    client = client_as("charlie")
    assert client.get(f"/api/v1/projects/{world['project'].id}/pipelines/").status_code == 200
    response = client.patch(f"/api/v1/projects/{world['project'].id}/settings/executor-quota/", {"value": "7"})
    assert response.status_code == 200


def test_non_member_cannot_tell_a_project_exists(world, client_as):
    client = client_as("charlie")
    real = client.get(f"/api/v1/projects/{world['project'].id}/pipelines/")
    missing = client.get("/api/v1/projects/p-nope0/pipelines/")
    assert real.status_code == missing.status_code == 404
    assert real.content == missing.content


def test_project_list_shows_only_my_projects(world, client_as):
    from devops.controller.projects import do_create_project

    do_create_project("charlies", owner=world["project"].members.get(role="owner").user)  # alice's 2nd
    assert client_as("charlie").get("/api/v1/projects/").json()["count"] == 0
    names = [p["spec"]["displayName"] for p in client_as("alice").get("/api/v1/projects/").json()["results"]]
    assert names == ["charlies", "demo"]
    assert [p["metadata"]["name"] for p in client_as("ronnie").get("/api/v1/projects/").json()["results"]] == [
        world["project"].id
    ]


def test_creator_becomes_owner(personas, client_as):
    response = client_as("charlie").post("/api/v1/projects/", {"name": "mine"}, format="json")
    assert response.status_code == 201
    project_id = response.json()["metadata"]["name"]
    members = client_as("charlie").get(f"/api/v1/projects/{project_id}/members/").json()["results"]
    assert [(m["metadata"]["name"], m["spec"]["role"]) for m in members] == [("charlie", "owner")]
