"""Repositories page: list (refresh, search), enable (pipeline + webhook), webhook health, delete -> hook deleted."""
from __future__ import annotations

import json
import logging

import pytest
import responses

from devops.controller import scmcreds
from devops.models import Pipeline, SourceCodeRepository, WebhookDelivery
from tests.scm.conftest import check_github_body, make_credential, octokit, openapi_operation

pytestmark = pytest.mark.django_db


@pytest.fixture
def listed(rsps, project, github_config, personas):
    cred = make_credential(project, "github", token="gho_listing_token", user=personas["bob"])
    rsps.add(responses.GET, "https://api.github.com/user/repos",
             json=[*openapi_operation("GET /user/repos")["response_example"], octokit("get-repository")[0]["response"]])
    return cred


def test_refresh_lists_repositories_and_search_filters(client, personas, project, listed):
    client.force_login(personas["bob"])
    resp = client.post(f"/p/{project.id}/repositories/refresh/{listed.pk}", follow=True)
    assert b"2 repositories listed" in resp.content
    assert set(SourceCodeRepository.objects.values_list("full_name", flat=True)) == {
        "octocat/Hello-World", "octokit-fixture-org/hello-world"}
    page = client.get(f"/p/{project.id}/repositories/", {"q": "octokit"}).content.decode()
    assert "octokit-fixture-org/hello-world" in page and "octocat/Hello-World" not in page
    assert "gho_listing_token" not in page
    # A listing is bob's view of GitHub: other members see neither it nor his buttons...
    for other in ("alice", "ronnie"):
        client.force_login(personas[other])
        page = client.get(f"/p/{project.id}/repositories/").content.decode()
        assert "octocat/Hello-World" not in page and "Refresh repositories" not in page
        assert "someone" in page  # ...but they see that the account is connected
    client.force_login(personas["alice"])
    assert client.post(f"/p/{project.id}/repositories/refresh/{listed.pk}").status_code == 403
    row = SourceCodeRepository.objects.get(full_name="octocat/Hello-World")
    assert client.post(f"/p/{project.id}/repositories/{row.pk}/enable").status_code == 403
    assert "Enable octocat" not in client.get(f"/p/{project.id}/pipelines/new").content.decode()
    client.force_login(personas["charlie"])
    assert client.get(f"/p/{project.id}/repositories/").status_code == 404
    assert client.post(f"/p/{project.id}/repositories/refresh/{listed.pk}").status_code == 404


def test_the_list_is_paged(client, personas, project, listed):
    from devops.models import SourceCodeRepository as Row
    from devops.web import views_scm

    Row.objects.bulk_create(Row(project=project, credential=listed, source_code_type="github", url=f"u{i}",
                                full_name=f"org/repo-{i:03d}", external_id=str(i))
                            for i in range(views_scm.REPOS_PER_PAGE + 5))
    client.force_login(personas["bob"])
    first = client.get(f"/p/{project.id}/repositories/").content.decode()
    second = client.get(f"/p/{project.id}/repositories/", {"page": 2}).content.decode()
    assert "org/repo-000" in first and "org/repo-104" not in first and "page 1 of 2" in first
    assert "org/repo-104" in second and "org/repo-000" not in second


def test_enable_creates_the_pipeline_and_the_webhook(client, personas, project, listed, rsps):
    scmcreds.refresh_repositories(listed)
    row = SourceCodeRepository.objects.get(full_name="octocat/Hello-World")
    rsps.add(responses.POST, "https://api.github.com/repos/octocat/Hello-World/hooks", status=201,
             json=openapi_operation("POST /repos/{owner}/{repo}/hooks")["response_example"])
    client.force_login(personas["bob"])
    new_page = client.get(f"/p/{project.id}/pipelines/new").content.decode()
    assert "Enable octocat/Hello-World" in new_page and "Git URL" in new_page
    resp = client.post(f"/p/{project.id}/repositories/{row.pk}/enable")
    assert resp.status_code == 302
    pipeline = Pipeline.objects.get(project=project)
    assert pipeline.repository_url == "https://github.com/octocat/Hello-World.git"
    assert pipeline.credential == listed and pipeline.webhook_id == "12345678"
    hook = check_github_body("POST /repos/{owner}/{repo}/hooks", rsps.calls[-1].request.body)
    assert hook["config"]["url"] == f"http://127.0.0.1:8000/api/v1/hooks/github/{pipeline.name}"
    assert hook["config"]["secret"] == pipeline.webhook_token and len(pipeline.webhook_token) >= 32
    row.refresh_from_db()
    assert row.pipeline == pipeline and row.hook_id == "12345678"
    # health: hook id, last delivery and whether its signature was good
    WebhookDelivery.objects.create(pipeline=pipeline, provider="github", delivery_id="d1", event="push",
                                   signature_ok=False, outcome="bad-signature")
    page = client.get(f"/p/{project.id}/repositories/").content.decode()
    assert "hook 12345678" in page and "bad-signature" in page and ">bad<" in page
    WebhookDelivery.objects.create(pipeline=pipeline, provider="github", delivery_id="d2", event="push",
                                   signature_ok=True, outcome="ran")
    page = client.get(f"/p/{project.id}/repositories/").content.decode()
    assert "(ran)" in page and ">OK<" in page


def test_a_refused_webhook_leaves_no_pipeline(client, personas, project, listed, rsps):
    scmcreds.refresh_repositories(listed)
    row = SourceCodeRepository.objects.get(full_name="octocat/Hello-World")
    rsps.add(responses.POST, "https://api.github.com/repos/octocat/Hello-World/hooks", status=404,
             json={"message": "Not Found"})
    client.force_login(personas["bob"])
    resp = client.post(f"/p/{project.id}/repositories/{row.pk}/enable", follow=True)
    assert not Pipeline.objects.exists()
    assert b"Not Found" in resp.content


def _enabled(rsps, listed) -> Pipeline:
    scmcreds.refresh_repositories(listed)
    row = SourceCodeRepository.objects.get(full_name="octocat/Hello-World")
    rsps.add(responses.POST, "https://api.github.com/repos/octocat/Hello-World/hooks", status=201,
             json=openapi_operation("POST /repos/{owner}/{repo}/hooks")["response_example"])
    return scmcreds.enable(row)


def test_deleting_the_pipeline_deletes_the_webhook(client, personas, project, listed, rsps,
                                                   django_capture_on_commit_callbacks):
    pipeline = _enabled(rsps, listed)
    rsps.add(responses.DELETE, "https://api.github.com/repos/octocat/Hello-World/hooks/12345678", status=204)
    client.force_login(personas["bob"])
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post(f"/p/{project.id}/pipelines/{pipeline.name}/delete")
    assert resp.status_code == 302 and not Pipeline.objects.exists()
    assert rsps.calls[-1].request.method == "DELETE"
    assert rsps.calls[-1].request.headers["Authorization"] == "Bearer gho_listing_token"


def test_a_failing_hook_delete_never_blocks_the_pipeline_delete(client, personas, project, listed, rsps, caplog,
                                                                django_capture_on_commit_callbacks):
    pipeline = _enabled(rsps, listed)
    rsps.add(responses.DELETE, "https://api.github.com/repos/octocat/Hello-World/hooks/12345678", status=502)
    client.force_login(personas["bob"])
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post(f"/p/{project.id}/pipelines/{pipeline.name}/delete")
    assert resp.status_code == 302 and not Pipeline.objects.exists()
    assert "NOT deleted" in caplog.text and "gho_listing_token" not in caplog.text
    assert any(r.levelno == logging.WARNING for r in caplog.records)


def test_the_pipeline_file_is_read_through_the_contents_api_at_the_commit(project, listed, rsps):
    from devops.controller.actions.source import _provider_file

    pipeline = _enabled(rsps, listed)
    commit = "7fd1a60b01f91b314f59955a4e4d4e80d8edf11d"
    base = "https://api.github.com/repos/octocat/Hello-World/contents/"
    for missing in (".devops.yml", ".rancher-pipeline.yaml"):
        rsps.add(responses.GET, base + missing, status=404, json={"message": "Not Found"})
    rsps.add(responses.GET, base + ".rancher-pipeline.yml", body=b"stages: []\n",
             match=[responses.matchers.query_param_matcher({"ref": commit})])
    assert _provider_file(pipeline, commit, 1 << 20) == (".rancher-pipeline.yml", "stages: []\n")
    generic = Pipeline.objects.create(project=project, repository_url="https://git.example.com/x.git")
    assert _provider_file(generic, commit, 1 << 20) is None  # generic Git: the mirror is read
    assert json.loads(json.dumps(rsps.calls[-1].request.params)) == {"ref": commit}


def test_gitlab_enable_points_the_project_hook_at_the_gitlab_receiver(project, gitlab_config, personas, rsps,
                                                                      django_capture_on_commit_callbacks):
    api = "https://gitlab.example.com/api/v4"
    cred = make_credential(project, "gitlab", token="gl-tok", user=personas["bob"])
    rsps.add(responses.GET, f"{api}/projects", json=[{
        "id": 42, "path_with_namespace": "group/app", "http_url_to_repo": "https://gitlab.example.com/group/app.git",
        "web_url": "https://gitlab.example.com/group/app", "default_branch": "main", "visibility": "private",
        "permissions": {"project_access": {"access_level": 40}, "group_access": None}}])
    scmcreds.refresh_repositories(cred)
    row = SourceCodeRepository.objects.get()
    assert (row.api_id, row.private, row.permissions) == ("42", True, {"access_level": 40})
    rsps.add(responses.POST, f"{api}/projects/42/hooks", json={"id": 7}, status=201)
    pipeline = scmcreds.enable(row)
    sent = json.loads(rsps.calls[-1].request.body)
    assert sent["url"] == f"http://127.0.0.1:8000/api/v1/hooks/gitlab/{pipeline.name}"
    assert sent["token"] == pipeline.webhook_token  # what the receiver compares X-Gitlab-Token with
    assert sent["push_events"] and sent["tag_push_events"] and sent["merge_requests_events"]
    rsps.add(responses.DELETE, f"{api}/projects/42/hooks/7", status=204)
    with django_capture_on_commit_callbacks(execute=True):
        pipeline.delete()
    assert rsps.calls[-1].request.method == "DELETE" and rsps.calls[-1].request.url == f"{api}/projects/42/hooks/7"
