"""CRD shape of every kind (Rancher's field names), list views in constant queries, filters."""
from __future__ import annotations

import pytest

from devops.api import crd
from tests.api.conftest import add_execution


def url(world, tail: str = "") -> str:
    return f"/api/v1/projects/{world['project'].id}/{tail}"


def test_pipeline_shape(world, client_as):
    body = client_as("ronnie").get(url(world, "pipelines/p-app01/")).json()
    project_id = world["project"].id
    assert body["apiVersion"] == "project.slipway.io/v3" and body["kind"] == "Pipeline"
    assert body["metadata"]["name"] == "p-app01" and body["metadata"]["namespace"] == project_id
    assert body["metadata"]["creationTimestamp"].endswith("Z")
    spec, status = body["spec"], body["status"]
    assert spec["repositoryUrl"] == "https://github.com/acme/app.git"
    assert spec["displayName"] == "app" and spec["projectName"] == f"local:{project_id}"
    assert (spec["triggerWebhookPush"], spec["triggerWebhookPr"], spec["triggerWebhookTag"]) == (True, False, False)
    assert spec["sourceCodeCredentialName"] == "alice-github"
    assert spec["imageWebHookToken"] == [
        {"branches": ["main"], "comment": "base", "imageType": "harbor", "triggerImage": "acme/base:latest"}
    ]
    assert status["pipelineState"] == "active" and status["nextRun"] == 3
    assert status["lastRunState"] == "Failed" and status["lastExecutionId"] == "p-app01-2"
    assert status["lastStarted"] == "2026-11-26T09:30:15Z"
    assert status["webHookId"] == "hook-17" and status["executionScheduledInfo"] == []
    assert "token" not in str(body).lower().replace("imagewebhooktoken", "")


def test_execution_shape(world, client_as):
    body = client_as("ronnie").get(url(world, "executions/p-app01-2/")).json()
    assert body["kind"] == "PipelineExecution"
    assert body["metadata"]["labels"] == {"slipway.io/pipeline": "p-app01", "slipway.io/finished": "true"}
    spec, status = body["spec"], body["status"]
    assert spec["run"] == 2 and spec["branch"] == "dev" and spec["ref"] == "refs/heads/dev"
    assert spec["commit"] == "0123456789abcdef0123456789abcdef01234567"
    assert spec["message"].startswith("Fix the build") and spec["author"] == "alice"
    assert spec["event"] == "push" and spec["triggeredBy"] == "webhook" and spec["triggerUserName"] == ""
    assert spec["repositoryUrl"] == "https://github.com/acme/app.git"
    assert spec["pipelineName"] == f"{world['project'].id}:p-app01"
    assert spec["pipelineConfig"]["stages"][0]["name"] == "Build"
    assert status["executionState"] == "Failed"
    assert (status["started"], status["ended"]) == ("2026-11-26T09:30:15Z", "2026-11-26T09:30:57Z")
    assert status["conditions"] == [{"type": "Initialized", "status": "True"}]
    assert [s["name"] for s in status["stages"]] == ["stage-0", "stage-1"]
    stage = status["stages"][1]
    assert (stage["state"], stage["started"], stage["ended"]) == ("Failed", "2026-11-26T09:30:15Z", "2026-11-26T09:30:25Z")
    assert [(s["name"], s["state"], s["ended"]) for s in stage["steps"]] == [
        ("step-1-0", "Failed", "2026-11-26T09:30:20Z"),
        ("step-1-1", "Failed", "2026-11-26T09:30:20Z"),
    ]


def test_execution_pipeline_config_is_in_pipeline_file_shape(world, client_as):
    """The controller stores `PipelineConfig.to_json()`; the CRD shows Rancher's file shape."""
    import yaml

    from devops.models import PipelineExecution
    from devops.pipeline import load

    text = (
        "stages:\n- name: Test\n  steps:\n  - runScriptConfig: {image: busybox, shellScript: make}\n"
        "    when: {branch: main}\n"
    )
    config = load(text).config
    run = add_execution(world["pipeline"], 3)
    PipelineExecution.objects.filter(pk=run.pk).update(config=config.to_json())
    shown = client_as("ronnie").get(url(world, f"executions/{run.name}/")).json()["spec"]["pipelineConfig"]
    assert [s["name"] for s in shown["stages"]] == ["Clone", "Test"]
    step = shown["stages"][1]["steps"][0]
    assert step["runScriptConfig"] == {"image": "busybox", "shellScript": "make"}
    assert step["when"] == {"branch": {"include": ["main"]}}
    assert "type" not in step and shown["timeout"] == 60
    assert load(yaml.safe_dump(shown)).config == config  # a valid pipeline file again


def test_setting_secret_credential_repository_provider_shapes(world, client_as):
    client = client_as("ronnie")
    setting = client.get(url(world, "settings/executor-quota/")).json()
    assert setting["kind"] == "PipelineSetting"
    assert setting["spec"]["value"] == "" and setting["spec"]["default"] == "2"
    assert setting["spec"]["description"] and setting["status"]["effective"] == "2"
    secret = client.get(url(world, "secrets/registry/")).json()
    assert secret["kind"] == "Secret" and secret["spec"] == {"keys": ["password"]}
    cred = client.get(url(world, "credentials/alice-github/")).json()
    assert cred["kind"] == "SourceCodeCredential"
    assert cred["spec"]["loginName"] == "alice-gh" and cred["spec"]["displayName"] == "Alice A."
    assert cred["spec"]["avatarUrl"] == "https://avatars.example/alice.png"
    assert not {"accessToken", "refreshToken", "sshPrivateKey"} & set(cred["spec"])
    repo = client.get(url(world, f"repositories/{world['repository'].pk}/")).json()
    assert repo["kind"] == "SourceCodeRepository"
    assert repo["spec"]["url"] == "https://github.com/acme/app.git"
    assert repo["spec"]["permissions"] == {"pull": True, "push": True, "admin": False}
    provider = crd.objects("sourcecodeproviderconfigs", world["project"].id)[0]
    assert provider["kind"] == "SourceCodeProviderConfig" and provider["spec"]["clientId"] == "cid-123"
    assert "clientSecret" not in provider["spec"]


def test_every_kind_renders_in_crd_shape(world):
    for plural, kind in crd.KINDS.items():
        items = crd.objects(plural, world["project"].id)
        assert items, plural
        for item in items:
            assert item["apiVersion"] == "project.slipway.io/v3" and item["kind"] == kind.kind
            assert set(item["metadata"]) == {"name", "namespace", "labels", "creationTimestamp"}
            assert isinstance(item["spec"], dict)


def test_executions_newest_first_and_filtered(world, client_as):
    client = client_as("ronnie")
    names = [e["metadata"]["name"] for e in client.get(url(world, "executions/")).json()["results"]]
    assert names == ["p-app01-2", "p-app01-1"]
    failed = client.get(url(world, "executions/"), {"state": "Failed"}).json()["results"]
    assert [e["metadata"]["name"] for e in failed] == ["p-app01-2"]
    main = client.get(url(world, "pipelines/p-app01/executions/"), {"branch": "main"}).json()["results"]
    assert [e["metadata"]["name"] for e in main] == ["p-app01-1"]
    bad = client.get(url(world, "executions/"), {"state": "Exploded"})
    assert bad.status_code == 400 and "state" in bad.json()
    assert client.get(url(world, "pipelines/p-nope1/executions/")).status_code == 404


# membership + count + rows (+ stages + steps for executions), however many rows.
@pytest.mark.parametrize(
    "tail,factor,queries",
    [("executions/", "executions", 5), ("pipelines/", "pipelines", 3), ("secrets/", None, 3),
     ("settings/", None, 3), ("members/", None, 3), ("credentials/", None, 3), ("repositories/", None, 3)],
)
def test_list_views_cost_constant_queries(world, client_as, django_assert_max_num_queries, tail, factor, queries):
    from devops.models import Pipeline

    client = client_as("bob")
    with django_assert_max_num_queries(queries):
        assert client.get(url(world, tail)).status_code == 200
    if factor == "executions":
        for run in range(3, 23):
            add_execution(world["pipeline"], run, stages=3)
    elif factor == "pipelines":
        Pipeline.objects.bulk_create(
            Pipeline(project=world["project"], name=f"p-many{i}", repository_url="https://g.example/r.git",
                     credential=world["credential"]) for i in range(20)
        )
    with django_assert_max_num_queries(queries):
        response = client.get(url(world, tail))
    assert response.status_code == 200


def test_project_list_constant_queries(world, client_as, django_assert_max_num_queries):
    from devops.controller.projects import do_create_project

    for i in range(10):
        do_create_project(f"more-{i}", owner=world["project"].members.get(role="owner").user)
    with django_assert_max_num_queries(3):
        assert client_as("alice").get("/api/v1/projects/").json()["count"] == 11


def test_rfc3339():
    from datetime import datetime, timedelta, timezone

    tz = timezone(timedelta(hours=2))
    assert crd.rfc3339(datetime(2026, 1, 2, 5, 4, 3, 999, tzinfo=tz)) == "2026-01-02T03:04:03Z"
    assert crd.rfc3339(None) is None
