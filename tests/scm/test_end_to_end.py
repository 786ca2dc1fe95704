"""A provider repository end to end: enable -> GitHub's recorded push (signed with the generated secret)
-> a run whose pipeline file came through the contents API at the pushed commit -> commit status.

The push body is GitHub's published sample (../shared/fixtures/webhooks/github/push-branch.json),
sent byte-exact; its commit id exists locally through `git replace` (tests/triggers/conftest.py),
so the mirror (the runner's clone) resolves it while the file is read from the provider API.
"""
from __future__ import annotations

import json

import pytest
import responses
from responses import matchers

from devops.controller import commit_status, scmcreds
from devops.models import Pipeline, PipelineExecution, SourceCodeRepository, WebhookDelivery
from tests.scm.conftest import check_github_body, make_credential, openapi_operation
from tests.triggers.conftest import (  # noqa: F401
    commits_named,
    data_dir,
    fixture_bytes,
    make_hook_repo,
    sha256_hex,
)

pytestmark = pytest.mark.django_db

API_YAML = """\
stages:
- name: From the contents API
  steps:
  - runScriptConfig:
      image: busybox
      shellScript: echo api
"""


def test_push_to_an_enabled_repository_runs_the_api_file_and_reports_pending(
        client, project, github_config, personas, rsps, data_dir, tmp_path):  # noqa: F811
    body = fixture_bytes("github/push-branch.json")
    commit = json.loads(body)["after"]
    repo_dir = tmp_path / "repo"
    make_hook_repo(repo_dir, commits=commits_named(body))  # its own .devops.yml differs from API_YAML
    cred = make_credential(project, "github", token="gho_e2e_token", user=personas["bob"])
    row = SourceCodeRepository.objects.create(project=project, credential=cred, source_code_type="github",
                                              url="https://github.com/octocat/Hello-World.git",
                                              full_name="octocat/Hello-World",
                                              external_id="1296269", default_branch="master")
    rsps.add(responses.POST, "https://api.github.com/repos/octocat/Hello-World/hooks", status=201,
             json=openapi_operation("POST /repos/{owner}/{repo}/hooks")["response_example"])
    pipeline = scmcreds.enable(row)
    # GitHub's Git server is out of reach here: the local repository stands in for it (set after
    # enable, which takes only a provider's https clone URL: tests/scm/test_hostile_listing.py).
    Pipeline.objects.filter(pk=pipeline.pk).update(repository_url=str(repo_dir))
    pipeline.refresh_from_db()
    hook = check_github_body("POST /repos/{owner}/{repo}/hooks", rsps.calls[0].request.body)
    rsps.add(responses.GET, "https://api.github.com/repos/octocat/Hello-World/contents/.devops.yml",
             body=API_YAML.encode(), match=[matchers.query_param_matcher({"ref": commit})])

    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
               "X-Hub-Signature-256": "sha256=" + sha256_hex(body, hook["config"]["secret"])}
    resp = client.post(f"/api/v1/hooks/github/{pipeline.name}", data=body, content_type="application/json",
                       headers=headers)
    assert resp.status_code == 202, resp.content
    run = PipelineExecution.objects.get(pipeline=pipeline)
    assert run.commit == commit and run.config_text == API_YAML
    assert WebhookDelivery.objects.get(pipeline=pipeline).signature_ok

    status_url = f"https://api.github.com/repos/octocat/Hello-World/statuses/{commit}"
    rsps.add(responses.POST, status_url, status=201, json={})
    commit_status._last_credentials = 0.0
    PipelineExecution.objects.filter(pk=run.pk).update(execution_state="Building")
    assert commit_status.tick_commit_status() is True
    sent = [json.loads(c.request.body) for c in rsps.calls if c.request.url == status_url]
    assert [s["state"] for s in sent] == ["pending"]
    page = client.get(f"/p/{project.id}/repositories/")
    assert page.status_code == 302  # not signed in: the login page, never the repository list
    client.force_login(personas["bob"])
    html = client.get(f"/p/{project.id}/repositories/").content.decode()
    assert "hook 12345678" in html and "(ran)" in html and ">OK<" in html
    assert "gho_e2e_token" not in html and hook["config"]["secret"] not in html
