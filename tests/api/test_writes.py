"""Writes through the API: what is accepted, and bad input answered 400 naming the field."""
from __future__ import annotations

import pytest

from devops.models import DEFAULT_SETTINGS, Pipeline, PipelineSetting, ProjectMember


def url(world, tail: str = "") -> str:
    return f"/api/v1/projects/{world['project'].id}/{tail}"


def test_create_pipeline_from_crd_spec(world, client_as):
    body = {
        "metadata": {"name": "web"},
        "spec": {
            "repositoryUrl": "git@github.com:acme/web.git",
            "displayName": "Web",
            "triggerWebhookTag": True,
            "sourceCodeCredentialName": "alice-github",
            "imageWebHookToken": [{"imageType": "dockerhub", "triggerImage": "acme/web", "token": "t0k"}],
        },
    }
    response = client_as("bob").post(url(world, "pipelines/"), body, format="json")
    assert response.status_code == 201, response.content
    out = response.json()
    assert out["metadata"]["name"] == "web" and out["spec"]["triggerWebhookTag"] is True
    assert out["spec"]["sourceCodeCredentialName"] == "alice-github"
    assert b"t0k" not in response.content
    stored = Pipeline.objects.get(name="web")
    assert stored.project_id == world["project"].id and stored.image_webhooks[0]["token"] == "t0k"


def test_create_pipeline_from_bare_spec_gets_a_generated_name(world, client_as):
    response = client_as("alice").post(url(world, "pipelines/"), {"repositoryUrl": "https://g.example/a.git"}, format="json")
    assert response.status_code == 201 and response.json()["metadata"]["name"].startswith("p-")


@pytest.mark.parametrize(
    "body,path",
    [
        ({"spec": {}}, ("spec", "repositoryUrl")),
        ({"spec": {"repositoryUrl": "--upload-pack=touch /tmp/x"}}, ("spec", "repositoryUrl")),
        ({"spec": {"repositoryUrl": "ftp://x/y"}}, ("spec", "repositoryUrl")),
        ({"spec": {"repositoryUrl": "https://g.example/a.git", "triggerWebhookPush": "maybe"}}, ("spec", "triggerWebhookPush")),
        ({"spec": {"repositoryUrl": "https://g.example/a.git", "sourceCodeCredentialName": "nope"}},
         ("spec", "sourceCodeCredentialName")),
        ({"spec": {"repositoryUrl": "https://g.example/a.git", "defaultBranch": "a..b"}}, ("spec", "defaultBranch")),
        ({"spec": {"repositoryUrl": "https://g.example/a.git", "imageWebHookToken": [{"imageType": "quay"}]}},
         ("spec", "imageWebHookToken")),
        ({"metadata": {"name": "Bad_Name"}, "spec": {"repositoryUrl": "https://g.example/a.git"}}, ("metadata", "name")),
        ({"metadata": {"name": "p-app01"}, "spec": {"repositoryUrl": "https://g.example/a.git"}}, ("metadata", "name")),
    ],
)
def test_bad_pipeline_input_names_the_field(world, client_as, body, path):
    response = client_as("bob").post(url(world, "pipelines/"), body, format="json")
    assert response.status_code == 400, response.content
    errors = response.json()
    for key in path:
        errors = errors[key]
    assert errors


def test_patch_pipeline_changes_only_given_fields(world, client_as):
    response = client_as("bob").patch(url(world, "pipelines/p-app01/"), {"spec": {"triggerWebhookPr": True}}, format="json")
    assert response.status_code == 200
    stored = Pipeline.objects.get(name="p-app01")
    assert stored.trigger_webhook_pr and stored.repository_url == "https://github.com/acme/app.git"
    assert stored.credential_id == world["credential"].pk


def test_settings(world, client_as):
    client = client_as("alice")
    names = [s["metadata"]["name"] for s in client.get(url(world, "settings/")).json()["results"]]
    assert "executor-quota" in names and len(names) == len(DEFAULT_SETTINGS)
    assert client.patch(url(world, "settings/executor-quota/"), {"value": "4"}, format="json").status_code == 200
    assert world["project"].setting("executor-quota") == "4"
    assert client.patch(url(world, "settings/no-such/"), {"value": "4"}, format="json").status_code == 404
    for name, value in [("executor-quota", "0"), ("executor-quota", "-1"), ("executor-quota", "two"),
                        ("executor-memory-limit", "lots"), ("pip-index-url", "ftp://x"), ("devops-cache-dir", "rel")]:
        response = client.patch(url(world, f"settings/{name}/"), {"value": value}, format="json")
        assert response.status_code == 400 and "value" in response.json(), (name, value)
    assert client.patch(url(world, "settings/executor-quota/"), {}, format="json").status_code == 400
    reset = client.patch(url(world, "settings/executor-quota/"), {"value": ""}, format="json").json()
    assert reset["status"]["effective"] == "2" and PipelineSetting.objects.get(
        project=world["project"], name="executor-quota").value == ""


def test_members(world, client_as):
    client = client_as("alice")
    assert client.post(url(world, "members/"), {"user": "nobody", "role": "member"}, format="json").json().keys() == {"user"}
    assert client.post(url(world, "members/"), {"user": "bob", "role": "member"}, format="json").status_code == 400
    assert "role" in client.post(url(world, "members/"), {"user": "charlie", "role": "god"}, format="json").json()
    # The last owner can neither be demoted nor removed.
    assert client.patch(url(world, "members/alice/"), {"role": "member"}, format="json").status_code == 400
    assert client.delete(url(world, "members/alice/")).status_code == 400
    assert client.patch(url(world, "members/bob/"), {"role": "owner"}, format="json").status_code == 200
    assert client.delete(url(world, "members/alice/")).status_code == 204
    assert ProjectMember.objects.get(user__username="bob").role == "owner"


def test_projects(world, client_as):
    client = client_as("bob")
    assert client.post("/api/v1/projects/", {"name": "demo"}, format="json").json().keys() == {"name"}
    assert client.post("/api/v1/projects/", {}, format="json").json().keys() == {"name"}
    assert client_as("alice").patch(url(world), {"name": "renamed"}, format="json").json()["spec"]["displayName"] == "renamed"
    assert client_as(None).post("/api/v1/projects/", {"name": "x"}, format="json").status_code in (401, 403)
    for bad in ("tab\there", "line\nbreak"):  # as `project create`: printable names only
        assert client.post("/api/v1/projects/", {"name": bad}, format="json").json().keys() == {"name"}
        assert client_as("alice").patch(url(world), {"name": bad}, format="json").json().keys() == {"name"}


def test_delete_refused_while_an_execution_runs(world, client_as):
    from devops.models import Project
    from tests.api.conftest import add_execution

    add_execution(world["pipeline"], 3, state="Building")
    client = client_as("alice")
    for target in (url(world, "pipelines/p-app01/"), url(world)):
        response = client.delete(target)
        assert response.status_code == 409 and b"p-app01-3" in response.content
    assert Pipeline.objects.filter(name="p-app01").exists() and Project.objects.filter(pk=world["project"].id).exists()


def test_setting_added_after_the_project_was_made(world, client_as):
    PipelineSetting.objects.filter(project=world["project"], name="goproxy").delete()
    client = client_as("alice")
    shown = client.get(url(world, "settings/goproxy/")).json()
    assert shown["spec"]["value"] == "" and shown["metadata"]["name"] == "goproxy"
    response = client.patch(url(world, "settings/goproxy/"), {"value": "https://proxy.example,direct"}, format="json")
    assert response.status_code == 200
    assert world["project"].setting("goproxy") == "https://proxy.example,direct"


def test_file_repository_urls_are_for_superusers_only(world, client_as, personas, tmp_path):
    # A file:// URL reads any Git repository on the Slipway host, e.g. another
    # project's mirror under $SLIPWAY_DATA_DIR/mirrors: members may not use it.
    spec = {"repositoryUrl": f"file://{tmp_path}/other-project.git"}
    for method, tail in (("post", "pipelines/"), ("patch", "pipelines/p-app01/")):
        response = getattr(client_as("alice"), method)(url(world, tail), {"spec": spec}, format="json")
        assert response.status_code == 400, response.content
        assert "administrator" in response.json()["spec"]["repositoryUrl"][0]
    assert not Pipeline.objects.filter(repository_url=spec["repositoryUrl"]).exists()
    root = personas["alice"].__class__.objects.create_superuser("root", password="root-pw-123")
    from rest_framework.test import APIClient

    admin = APIClient()
    admin.force_authenticate(root)
    assert admin.post(url(world, "pipelines/"), {"spec": spec}, format="json").status_code == 201
