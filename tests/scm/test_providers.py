"""Provider REST calls (devops/scm, plain data) replayed from recorded exchanges.

GitHub: @octokit/fixtures scenarios (real exchanges, normalised by octokit)
and the documented examples of GitHub's OpenAPI description; every request
body Slipway sends to GitHub is validated against that description's schema.
GitLab and Bitbucket: bodies shaped after their API documentation
(recordings/SOURCES.md says which are constructed).
"""
from __future__ import annotations

import json

import pytest
import responses
from responses import matchers

from devops.scm import http
from devops.scm.base import App, Repo
from devops.scm.bitbucket import BitbucketCloudProvider, BitbucketServerProvider
from devops.scm.github import GitHubProvider
from devops.scm.gitlab import GitLabProvider
from tests.scm.conftest import check_github_body, octokit, openapi_operation, replay_octokit

GH = App(client_id="id", client_secret="secret")
HELLO = Repo(external_id="1000", full_name="octokit-fixture-org/hello-world", clone_url="")


def test_paging_follows_the_recorded_link_headers(rsps):
    exchanges = replay_octokit(rsps, "paginate-issues")
    client = http.Client("https://api.github.com", authorization="token x")
    items = list(client.pages("/repos/octokit-fixture-org/paginate-issues/issues?per_page=3"))
    assert len(items) == sum(len(x["response"]) for x in exchanges)
    assert len(rsps.calls) == len(exchanges) == 5


def test_github_lists_repositories_with_private_ones(rsps):
    listed = openapi_operation("GET /user/repos")["response_example"]
    second = octokit("get-repository")[0]["response"]
    rsps.add(responses.GET, "https://api.github.com/user/repos", json=listed,
             headers={"Link": '<https://api.github.com/user/repos?page=2>; rel="next"'},
             match=[matchers.query_param_matcher({"per_page": "100", "sort": "full_name", "visibility": "all",
                                                  "affiliation": "owner,collaborator,organization_member"})])
    rsps.add(responses.GET, "https://api.github.com/user/repos", json=[second],
             match=[matchers.query_string_matcher("page=2")])
    repos = GitHubProvider(GH, "tok").list_repos()
    assert [r.full_name for r in repos] == ["octocat/Hello-World", "octokit-fixture-org/hello-world"]
    assert repos[0].clone_url == "https://github.com/octocat/Hello-World.git" and repos[0].default_branch == "master"
    assert all(c.request.headers["Authorization"] == "Bearer tok" for c in rsps.calls)


def test_github_webhook_body_follows_the_openapi_schema(rsps):
    example = openapi_operation("POST /repos/{owner}/{repo}/hooks")["response_example"]
    rsps.add(responses.POST, "https://api.github.com/repos/octokit-fixture-org/hello-world/hooks", json=example,
             status=201)
    hook = GitHubProvider(GH, "tok").create_hook(HELLO, "https://ci.example.com/api/v1/hooks/github/p1", "s3cret")
    assert hook == str(example["id"])
    body = check_github_body("POST /repos/{owner}/{repo}/hooks", rsps.calls[0].request.body)
    assert body["events"] == ["push", "pull_request"] and body["config"]["secret"] == "s3cret"
    assert body["config"]["content_type"] == "json" and body["config"]["insecure_ssl"] == "0"


def test_github_webhook_delete_tolerates_a_hook_already_gone(rsps):
    url = "https://api.github.com/repos/octokit-fixture-org/hello-world/hooks/12345678"
    rsps.add(responses.DELETE, url, status=204)
    rsps.add(responses.DELETE, url, status=404, json={"message": "Not Found"})
    GitHubProvider(GH, "tok").delete_hook(HELLO, "12345678")
    GitHubProvider(GH, "tok").delete_hook(HELLO, "12345678")
    assert len(rsps.calls) == 2


def test_github_reads_the_file_at_the_commit(rsps):
    x = octokit("get-content")[1]  # the raw README.md exchange
    commit = "0" * 39 + "1"
    rsps.add(responses.GET, "https://api.github.com" + x["path"], body=x["response"].encode(), status=x["status"],
             content_type=x["headers"]["content-type"], match=[matchers.query_param_matcher({"ref": commit}),
                                                               matchers.header_matcher({"Accept": "application/vnd.github.raw"})])
    rsps.add(responses.GET, "https://api.github.com/repos/octokit-fixture-org/hello-world/contents/.devops.yml",
             status=404, json={"message": "Not Found"})
    p = GitHubProvider(GH, "tok")
    assert p.read_file(HELLO, "README.md", commit, 1000) == b"# hello-world"
    assert p.read_file(HELLO, ".devops.yml", commit, 1000) is None
    with pytest.raises(http.ProviderError, match="limit"):
        p.read_file(HELLO, "README.md", commit, 5)


def test_github_commit_status_matches_the_recording_and_the_schema(rsps):
    x = octokit("create-status")[0]
    rsps.add(responses.POST, "https://api.github.com" + x["path"], json=x["response"], status=x["status"])
    repo = Repo(external_id="1", full_name="octokit-fixture-org/create-status", clone_url="")
    GitHubProvider(GH, "tok").set_status(repo, "0" * 39 + "1", "failure", "https://example.com",
                                         "create-status failure test")
    sent = check_github_body("POST /repos/{owner}/{repo}/statuses/{sha}", rsps.calls[0].request.body)
    assert set(sent) == set(x["body"]) and sent["state"] == x["body"]["state"]
    assert sent["context"] == "slipway"


def test_http_errors_map_to_unauthorized_transient_and_permanent(rsps):
    url = "https://api.github.com/user/repos"
    rsps.add(responses.GET, url, status=401, json={"message": "Bad credentials"})
    rsps.add(responses.GET, url, status=502, body=b"bad gateway")
    rsps.add(responses.GET, url, status=429, headers={"Retry-After": "7"}, json={})
    rsps.add(responses.GET, url, status=422, json={"message": "Validation Failed"})
    client = http.Client("https://api.github.com", authorization="Bearer tok-should-not-leak")
    with pytest.raises(http.Unauthorized) as e401:
        client.get_json("/user/repos")
    with pytest.raises(http.Transient):
        client.get_json("/user/repos")
    with pytest.raises(http.Transient) as e429:
        client.get_json("/user/repos")
    with pytest.raises(http.ProviderError, match="Validation Failed"):
        client.get_json("/user/repos")
    assert e429.value.retry_after == 7.0
    assert "tok-should-not-leak" not in str(e401.value)


def test_an_answer_over_the_size_limit_is_refused(rsps, monkeypatch):
    monkeypatch.setattr(http, "MAX_BODY", 1000)
    rsps.add(responses.GET, "https://api.github.com/user/repos", body=b"[" + b" " * 5000 + b"]")
    with pytest.raises(http.ProviderError, match="over 1000 bytes"):
        http.Client("https://api.github.com").get_json("/user/repos")


def test_gitlab_hook_file_and_status(rsps):
    app = App(client_id="a", client_secret="b", hostname="gitlab.example.com")
    repo = Repo(external_id="7", api_id="7", full_name="group/app", clone_url="")
    api = "https://gitlab.example.com/api/v4"
    rsps.add(responses.POST, f"{api}/projects/7/hooks", json={"id": 1, "url": "u"}, status=201)
    rsps.add(responses.GET, f"{api}/projects/7/repository/files/.devops.yml/raw", body=b"stages: []\n",
             match=[matchers.query_param_matcher({"ref": "abc"})])
    rsps.add(responses.POST, f"{api}/projects/7/statuses/abc", json={"id": 93}, status=201)
    p = GitLabProvider(app, "gl-tok")
    assert p.create_hook(repo, "https://ci/api/v1/hooks/gitlab/p", "sec") == "1"
    assert json.loads(rsps.calls[0].request.body) == {
        "url": "https://ci/api/v1/hooks/gitlab/p", "token": "sec", "push_events": True, "tag_push_events": True,
        "merge_requests_events": True, "enable_ssl_verification": True}
    assert p.read_file(repo, ".devops.yml", "abc", 100) == b"stages: []\n"
    p.set_status(repo, "abc", "failure", "https://ci/run", "Run #1 failed")
    assert json.loads(rsps.calls[2].request.body)["state"] == "failed"
    assert all(c.request.headers["Authorization"] == "Bearer gl-tok" for c in rsps.calls)


def test_bitbucket_cloud_sends_tokens_only_as_bearer(rsps):
    app = App(client_id="k", client_secret="s")
    repo = Repo(external_id="{u}", full_name="team/app", clone_url="")
    api = "https://api.bitbucket.org/2.0"
    rsps.add(responses.GET, f"{api}/repositories", json={
        "pagelen": 1, "values": [{"uuid": "{1}", "full_name": "team/app", "is_private": True,
                                  "links": {"clone": [{"name": "https", "href": "https://someone@bitbucket.org/team/app.git"}],
                                            "html": {"href": "https://bitbucket.org/team/app"}},
                                  "mainbranch": {"name": "main"}}],
        "next": f"{api}/repositories?page=2"})
    rsps.add(responses.GET, f"{api}/repositories", json={"pagelen": 1, "values": []},
             match=[matchers.query_string_matcher("page=2")])
    rsps.add(responses.POST, f"{api}/repositories/team/app/hooks", json={"uuid": "{hook-1}"}, status=201)
    rsps.add(responses.POST, f"{api}/repositories/team/app/commit/abc/statuses/build", json={}, status=201)
    p = BitbucketCloudProvider(app, "bb-tok")
    repos = p.list_repos()
    assert [(r.full_name, r.clone_url, r.private) for r in repos] == [("team/app", "https://bitbucket.org/team/app.git", True)]
    assert p.create_hook(repo, "https://ci/h", "sec") == "{hook-1}"
    assert json.loads(rsps.calls[2].request.body)["events"] == ["repo:push", "pullrequest:created", "pullrequest:updated"]
    p.set_status(repo, "abc", "pending", "https://ci/run", "Run #1 is running")
    assert json.loads(rsps.calls[3].request.body)["state"] == "INPROGRESS"
    for call in rsps.calls:
        assert call.request.headers["Authorization"] == "Bearer bb-tok"
        assert "access_token" not in call.request.url


def test_bitbucket_server_pages_by_next_page_start(rsps):
    app = App(client_id="k", client_secret="s", hostname="bitbucket.example.com")
    api = "https://bitbucket.example.com/rest/api/latest"
    rsps.add(responses.GET, f"{api}/repos", match=[matchers.query_param_matcher({"permission": "REPO_ADMIN", "limit": "100", "start": "0"})],
             json={"isLastPage": False, "nextPageStart": 1, "values": [
                 {"id": 1, "slug": "app", "project": {"key": "PRJ"}, "public": False,
                  "links": {"clone": [{"name": "http", "href": "https://admin@bitbucket.example.com/scm/prj/app.git"}]}}]})
    rsps.add(responses.GET, f"{api}/repos", match=[matchers.query_param_matcher({"permission": "REPO_ADMIN", "limit": "100", "start": "1"})],
             json={"isLastPage": True, "values": []})
    repos = BitbucketServerProvider(app, "t").list_repos()
    assert [(r.full_name, r.clone_url) for r in repos] == [("PRJ/app", "https://bitbucket.example.com/scm/prj/app.git")]
