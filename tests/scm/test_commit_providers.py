"""Editor commits through the providers' contents APIs (FILE_STORES rows), provider side replayed with `responses`.

GitHub bodies are checked against GitHub's OpenAPI schema (recordings/github-openapi-subset.json)
and answered with recorded octokit exchanges; GitLab / Bitbucket answers are constructed
after their documentation (recordings/SOURCES.md, "Constructed, not recorded").
"""
from __future__ import annotations

import base64
import json
import logging
from urllib.parse import parse_qs

import pytest
import responses

from devops.controller import scmcreds
from devops.controller.actions import editor
from devops.models import SourceCodeRepository
from devops.scm import commit as scm_commit
from devops.scm.base import App, Repo
from devops.scm.bitbucket import BitbucketCloudProvider, BitbucketServerProvider
from devops.scm.gitlab import GitLabProvider
from tests.scm.conftest import check_github_body, make_credential, octokit, openapi_operation

HEAD = "aa218f56b14c9653891f9e74264a383fa43fefbd"   # the head in GitHub's documented ref example
OTHER = "0000000000000000000000000000000000000001"
TEXT = "# build\nstages:\n- name: build\n  steps:\n  - runScriptConfig:\n      image: golang:1.22\n      shellScript: go test ./...\n"
TOKEN = "gho_commit_secret_token"
API = "https://api.github.com/repos/octocat/Hello-World"


def _ref(sha: str, branch: str = "master") -> dict:
    # GitHub's documented `git/ref` example, pointed at the branch and head of the test.
    body = dict(openapi_operation("GET /repos/{owner}/{repo}/git/ref/{ref}")["response_example"])
    return {**body, "ref": f"refs/heads/{branch}", "object": {**body["object"], "sha": sha}}


def _content_example() -> dict:
    return openapi_operation("GET /repos/{owner}/{repo}/contents/{path}")["response_example"]


@pytest.fixture
def gh_pipeline(db, rsps, project, github_config, personas):
    cred = make_credential(project, "github", token=TOKEN, user=personas["bob"])
    rsps.add(responses.GET, "https://api.github.com/user/repos",
             json=openapi_operation("GET /user/repos")["response_example"])
    scmcreds.refresh_repositories(cred)
    rsps.add(responses.POST, f"{API}/hooks", status=201,
             json=openapi_operation("POST /repos/{owner}/{repo}/hooks")["response_example"])
    return scmcreds.enable(SourceCodeRepository.objects.get(full_name="octocat/Hello-World"))


def _calls(rsps, method: str, url: str) -> list:
    return [c for c in rsps.calls if c.request.method == method and c.request.url.split("?")[0] == url]


def test_repo_spec_of_a_provider_pipeline_uses_its_api(gh_pipeline):
    spec = editor.repo_spec_of(gh_pipeline)
    assert spec.provider == "github" and spec.scm_repo.full_name == "octocat/Hello-World"
    assert type(scm_commit.store_for(spec)).__name__ == "ProviderFileStore"
    assert TOKEN not in repr(spec)


def test_github_commit_puts_the_file_with_the_blob_sha_and_the_user_as_author(rsps, gh_pipeline, personas):
    put_url = f"{API}/contents/.devops.yml"
    rsps.add(responses.GET, f"{API}/git/ref/heads/master", json=_ref(HEAD))
    rsps.add(responses.GET, put_url, json=_content_example())
    recorded = octokit("create-file")[0]  # a real 201 answer of the contents API
    rsps.add(responses.PUT, put_url, status=201, json=recorded["response"])
    user = personas["bob"]
    sha = editor.do_commit_pipeline_file(gh_pipeline, user=user, branch="master", path=".devops.yml", text=TEXT,
                                         message="Edit in Slipway", expected_head=HEAD)
    assert sha == recorded["response"]["commit"]["sha"]
    (put,) = _calls(rsps, "PUT", put_url)
    body = check_github_body("PUT /repos/{owner}/{repo}/contents/{path}", put.request.body)
    assert base64.b64decode(body["content"]).decode() == TEXT
    assert body["sha"] == _content_example()["sha"] and body["branch"] == "master"
    assert body["message"] == "Edit in Slipway"
    name, email = editor._author(user)
    assert body["author"] == body["committer"] == {"name": name, "email": email}
    assert put.request.headers["Authorization"] == f"Bearer {TOKEN}"
    # the head was checked before writing, at the opened commit
    assert _calls(rsps, "GET", f"{API}/contents/.devops.yml")[0].request.url.endswith(f"ref={HEAD}")


def test_github_refuses_a_moved_branch_before_writing(rsps, gh_pipeline, personas):
    rsps.add(responses.GET, f"{API}/git/ref/heads/master", json=_ref(OTHER))
    with pytest.raises(editor.BranchMoved) as exc:
        editor.do_commit_pipeline_file(gh_pipeline, user=personas["bob"], branch="master", path=".devops.yml",
                                       text=TEXT, message="m", expected_head=HEAD)
    assert exc.value.actual == OTHER and "reload" in str(exc.value)
    assert not _calls(rsps, "PUT", f"{API}/contents/.devops.yml")


@pytest.mark.parametrize("status", [409, 422])
def test_github_stale_blob_sha_is_branch_moved(rsps, gh_pipeline, personas, status):
    rsps.add(responses.GET, f"{API}/git/ref/heads/master", json=_ref(HEAD))
    rsps.add(responses.GET, f"{API}/git/ref/heads/master", json=_ref(OTHER))
    rsps.add(responses.GET, f"{API}/contents/.devops.yml", json=_content_example())
    rsps.add(responses.PUT, f"{API}/contents/.devops.yml", status=status,
             json={"message": f".devops.yml does not match {_content_example()['sha']}"})
    with pytest.raises(editor.BranchMoved) as exc:
        editor.do_commit_pipeline_file(gh_pipeline, user=personas["bob"], branch="master", path=".devops.yml",
                                       text=TEXT, message="m", expected_head=HEAD)
    assert exc.value.actual == OTHER


def test_github_new_branch_is_created_at_the_opened_commit_then_written(rsps, gh_pipeline, personas):
    rsps.add(responses.GET, f"{API}/git/ref/heads/master", json=_ref(HEAD))
    rsps.add(responses.GET, f"{API}/git/ref/heads/edit-1", status=404, json={"message": "Not Found"})
    refs = octokit("git-refs")[1]  # the recorded POST /git/refs exchange
    rsps.add(responses.POST, f"{API}/git/refs", status=201, json=refs["response"])
    rsps.add(responses.GET, f"{API}/contents/.devops.yml", status=404, json={"message": "Not Found"})
    rsps.add(responses.PUT, f"{API}/contents/.devops.yml", status=201, json=octokit("create-file")[0]["response"])
    editor.do_commit_pipeline_file(gh_pipeline, user=personas["bob"], branch="master", path=".devops.yml",
                                   text=TEXT, message="m", expected_head=HEAD, new_branch="edit-1")
    (post,) = _calls(rsps, "POST", f"{API}/git/refs")
    assert check_github_body("POST /repos/{owner}/{repo}/git/refs", post.request.body) == {
        "ref": "refs/heads/edit-1", "sha": HEAD}
    (put,) = _calls(rsps, "PUT", f"{API}/contents/.devops.yml")
    body = check_github_body("PUT /repos/{owner}/{repo}/contents/{path}", put.request.body)
    assert body["branch"] == "edit-1" and "sha" not in body  # a new file: no blob to replace
    order = [c.request.method for c in rsps.calls if "/git/refs" in c.request.url or "/contents/" in c.request.url]
    assert order == ["POST", "GET", "PUT"]


def test_github_new_branch_that_exists_is_refused(rsps, gh_pipeline, personas):
    rsps.add(responses.GET, f"{API}/git/ref/heads/master", json=_ref(HEAD))
    rsps.add(responses.GET, f"{API}/git/ref/heads/taken", json=_ref(OTHER, "taken"))
    with pytest.raises(editor.BranchExists):
        editor.do_commit_pipeline_file(gh_pipeline, user=personas["bob"], branch="master", path=".devops.yml",
                                       text=TEXT, message="m", expected_head=HEAD, new_branch="taken")
    assert not _calls(rsps, "POST", f"{API}/git/refs")


def test_github_error_names_no_token_in_message_or_log(rsps, gh_pipeline, personas, caplog):
    caplog.set_level(logging.DEBUG)
    rsps.add(responses.GET, f"{API}/git/ref/heads/master", json=_ref(HEAD))
    rsps.add(responses.GET, f"{API}/contents/.devops.yml", json=_content_example())
    rsps.add(responses.PUT, f"{API}/contents/.devops.yml", status=403,
             json={"message": "Resource not accessible by integration"})
    with pytest.raises(editor.CommitError) as exc:
        editor.do_commit_pipeline_file(gh_pipeline, user=personas["bob"], branch="master", path=".devops.yml",
                                       text=TEXT, message="m", expected_head=HEAD)
    assert "Resource not accessible" in str(exc.value)
    assert TOKEN not in str(exc.value) and TOKEN not in caplog.text


def test_github_open_reads_the_file_at_the_branch_head(rsps, gh_pipeline):
    rsps.add(responses.GET, f"{API}/git/ref/heads/master", json=_ref(HEAD))
    rsps.add(responses.GET, f"{API}/contents/.devops.yml", body=TEXT.encode())
    opened = editor.open_pipeline_file(gh_pipeline, "master")
    assert (opened.head, opened.path, opened.text, opened.starter) == (HEAD, ".devops.yml", TEXT, False)


# --- GitLab, Bitbucket: the provider modules through the same store (Django-free) ------------------


def _spec(provider_cls, name: str, repo: Repo, app: App) -> scm_commit.RepoSpec:
    return scm_commit.RepoSpec(url=repo.clone_url, provider=name, scm_repo=repo,
                               api=lambda fn: fn(provider_cls(app, TOKEN)))


GL = "https://gitlab.example.com/api/v4/projects/42"
GL_SPEC = _spec(GitLabProvider, "gitlab", Repo("42", "group/app", "https://gitlab.example.com/group/app.git",
                                                api_id="42"), App("id", hostname="gitlab.example.com"))
FILE_COMMIT = "ed899a2f4b50b4370feeea94676502b42383c746"  # GitLab's documented file example's last_commit_id


def _gl_branch(rsps, sha):
    rsps.add(responses.GET, f"{GL}/repository/branches/master", json={"name": "master", "commit": {"id": sha}})


def test_gitlab_commit_is_one_action_with_author_and_last_commit_id(rsps):
    _gl_branch(rsps, HEAD)
    rsps.add(responses.HEAD, f"{GL}/repository/files/.devops.yml", headers={"X-Gitlab-Last-Commit-Id": FILE_COMMIT})
    rsps.add(responses.POST, f"{GL}/repository/commits", status=201, json={"id": OTHER, "short_id": OTHER[:8]})
    sha = scm_commit.commit_file(GL_SPEC, "master", ".devops.yml", TEXT, "Edit", "Bob B", "bob@example.com", HEAD)
    assert sha == OTHER
    (post,) = _calls(rsps, "POST", f"{GL}/repository/commits")
    assert json.loads(post.request.body) == {
        "branch": "master", "commit_message": "Edit", "author_name": "Bob B", "author_email": "bob@example.com",
        "actions": [{"action": "update", "file_path": ".devops.yml", "content": TEXT, "encoding": "text",
                     "last_commit_id": FILE_COMMIT}]}
    assert _calls(rsps, "HEAD", f"{GL}/repository/files/.devops.yml")[0].request.url.endswith(f"ref={HEAD}")


def test_gitlab_refusal_of_a_changed_file_is_branch_moved(rsps):
    _gl_branch(rsps, HEAD)
    rsps.add(responses.HEAD, f"{GL}/repository/files/.devops.yml", headers={"X-Gitlab-Last-Commit-Id": FILE_COMMIT})
    rsps.add(responses.POST, f"{GL}/repository/commits", status=400,
             json={"message": "You are attempting to update a file that has changed since you started editing it."})
    _gl_branch(rsps, OTHER)
    with pytest.raises(scm_commit.BranchMoved) as exc:
        scm_commit.commit_file(GL_SPEC, "master", ".devops.yml", TEXT, "Edit", "Bob", "b@example.com", HEAD)
    assert exc.value.actual == OTHER


def test_gitlab_moved_head_is_refused_before_writing(rsps):
    _gl_branch(rsps, OTHER)
    with pytest.raises(scm_commit.BranchMoved):
        scm_commit.commit_file(GL_SPEC, "master", ".devops.yml", TEXT, "Edit", "Bob", "b@example.com", HEAD)
    assert not _calls(rsps, "POST", f"{GL}/repository/commits")


def test_gitlab_new_branch_starts_at_the_opened_commit_and_creates_a_new_file(rsps):
    _gl_branch(rsps, HEAD)
    rsps.add(responses.GET, f"{GL}/repository/branches/edit-1", status=404, json={"message": "404 Branch Not Found"})
    rsps.add(responses.HEAD, f"{GL}/repository/files/.devops.yml", status=404)
    rsps.add(responses.POST, f"{GL}/repository/commits", status=201, json={"id": OTHER})
    scm_commit.commit_file(GL_SPEC, "master", ".devops.yml", TEXT, "Edit", "Bob", "b@example.com", HEAD,
                           new_branch="edit-1")
    body = json.loads(_calls(rsps, "POST", f"{GL}/repository/commits")[0].request.body)
    assert body["branch"] == "edit-1" and body["start_sha"] == HEAD
    assert body["actions"][0]["action"] == "create" and "last_commit_id" not in body["actions"][0]


BB = "https://api.bitbucket.org/2.0/repositories/team/app"
BB_SPEC = _spec(BitbucketCloudProvider, "bitbucketcloud",
                Repo("{uuid}", "team/app", "https://bitbucket.org/team/app.git"), App("key"))


def _bb_branch(rsps, name, sha, status=200):
    rsps.add(responses.GET, f"{BB}/refs/branches/{name}", status=status,
             json={"name": name, "target": {"hash": sha}} if status == 200 else {"type": "error"})


def test_bitbucket_cloud_commit_posts_the_form_with_parents(rsps):
    _bb_branch(rsps, "master", HEAD)
    rsps.add(responses.POST, f"{BB}/src", status=201, headers={"Location": f"{BB}/commit/{OTHER}"})
    sha = scm_commit.commit_file(BB_SPEC, "master", ".devops.yml", TEXT, "Edit", "Bob B", "bob@example.com", HEAD)
    assert sha == OTHER
    (post,) = _calls(rsps, "POST", f"{BB}/src")
    form = {k: v[0] for k, v in parse_qs(post.request.body, keep_blank_values=True).items()}
    assert form == {".devops.yml": TEXT, "message": "Edit", "author": "Bob B <bob@example.com>",
                    "branch": "master", "parents": HEAD}
    assert post.request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_bitbucket_cloud_409_is_branch_moved(rsps):
    _bb_branch(rsps, "master", HEAD)
    rsps.add(responses.POST, f"{BB}/src", status=409, json={"type": "error", "error": {"message": "parent is not the tip"}})
    _bb_branch(rsps, "master", OTHER)
    with pytest.raises(scm_commit.BranchMoved):
        scm_commit.commit_file(BB_SPEC, "master", ".devops.yml", TEXT, "Edit", "Bob", "b@example.com", HEAD)


def test_bitbucket_cloud_new_branch(rsps):
    _bb_branch(rsps, "master", HEAD)
    _bb_branch(rsps, "edit-1", "", status=404)
    rsps.add(responses.POST, f"{BB}/src", status=201, headers={"Location": f"{BB}/commit/{OTHER}"})
    scm_commit.commit_file(BB_SPEC, "master", ".devops.yml", TEXT, "Edit", "Bob", "b@example.com", HEAD,
                           new_branch="edit-1")
    form = parse_qs(_calls(rsps, "POST", f"{BB}/src")[0].request.body)
    assert form["branch"] == ["edit-1"] and form["parents"] == [HEAD]


BS = "https://bitbucket.example.com/rest/api/latest/projects/PRJ/repos/app"
BS_SPEC = _spec(BitbucketServerProvider, "bitbucketserver",
                Repo("7", "PRJ/app", "https://bitbucket.example.com/scm/prj/app.git"),
                App("id", hostname="bitbucket.example.com"))


def _bs_branches(rsps, sha):
    rsps.add(responses.GET, f"{BS}/branches", json={"isLastPage": True, "values": [
        {"id": "refs/heads/master-old", "displayId": "master-old", "latestCommit": OTHER},
        {"id": "refs/heads/master", "displayId": "master", "latestCommit": sha}]})


def test_bitbucket_server_puts_multipart_with_source_commit(rsps):
    _bs_branches(rsps, HEAD)
    rsps.add(responses.GET, f"{BS}/raw/.devops.yml", body=b"old\n")
    rsps.add(responses.PUT, f"{BS}/browse/.devops.yml", json={"id": OTHER, "displayId": OTHER[:11]})
    assert scm_commit.commit_file(BS_SPEC, "master", ".devops.yml", TEXT, "Edit", "Bob", "b@example.com",
                                  HEAD) == OTHER
    (put,) = _calls(rsps, "PUT", f"{BS}/browse/.devops.yml")
    assert put.request.headers["Content-Type"].startswith("multipart/form-data")
    body = put.request.body.decode()
    for field, value in (("content", TEXT), ("message", "Edit"), ("branch", "master"), ("sourceCommitId", HEAD)):
        assert f'name="{field}"\r\n\r\n{value}\r\n' in body
    assert "sourceBranch" not in body


def test_bitbucket_server_409_is_branch_moved_and_new_branch_names_its_source(rsps):
    _bs_branches(rsps, HEAD)
    rsps.add(responses.GET, f"{BS}/raw/.devops.yml", body=b"old\n")
    rsps.add(responses.PUT, f"{BS}/browse/.devops.yml", status=409,
             json={"errors": [{"message": "The file has been modified since sourceCommitId"}]})
    _bs_branches(rsps, OTHER)
    with pytest.raises(scm_commit.BranchMoved):
        scm_commit.commit_file(BS_SPEC, "master", ".devops.yml", TEXT, "Edit", "Bob", "b@example.com", HEAD)
    rsps.reset()
    _bs_branches(rsps, HEAD)
    rsps.add(responses.GET, f"{BS}/raw/.devops.yml", body=b"old\n")
    rsps.add(responses.PUT, f"{BS}/browse/.devops.yml", json={"id": OTHER})
    scm_commit.commit_file(BS_SPEC, "master", ".devops.yml", TEXT, "Edit", "Bob", "b@example.com", HEAD,
                           new_branch="edit-1")
    body = _calls(rsps, "PUT", f"{BS}/browse/.devops.yml")[0].request.body.decode()
    assert 'name="branch"\r\n\r\nedit-1\r\n' in body and 'name="sourceBranch"\r\n\r\nmaster\r\n' in body


# --- tokens: refreshed through scmcreds as for every provider call ------------------------------


@pytest.fixture
def gl_pipeline(db, project, gitlab_config, personas):
    from datetime import timedelta

    from django.utils import timezone

    from devops.models import Pipeline

    cred = make_credential(project, "gitlab", token="glpat-old-token", refresh="gl-refresh-1",
                           expiry=timezone.now() + timedelta(minutes=1), user=personas["bob"])
    pipeline = Pipeline.objects.create(project=project, repository_url="https://gitlab.example.com/group/app.git",
                                       credential=cred, display_name="group/app", default_branch="master")
    SourceCodeRepository.objects.create(project=project, credential=cred, source_code_type="gitlab",
                                        url=pipeline.repository_url, full_name="group/app", external_id="42",
                                        api_id="42", pipeline=pipeline)
    return pipeline


def test_gitlab_commit_refreshes_an_expiring_token_first(rsps, gl_pipeline, personas, caplog):
    caplog.set_level(logging.DEBUG)
    rsps.add(responses.POST, "https://gitlab.example.com/oauth/token",
             json={"access_token": "glpat-new-token", "refresh_token": "gl-refresh-2", "token_type": "bearer",
                   "expires_in": 7200, "created_at": 1607635748})
    _gl_branch(rsps, HEAD)
    rsps.add(responses.HEAD, f"{GL}/repository/files/.devops.yml", headers={"X-Gitlab-Last-Commit-Id": FILE_COMMIT})
    rsps.add(responses.POST, f"{GL}/repository/commits", status=201, json={"id": OTHER})
    sha = editor.do_commit_pipeline_file(gl_pipeline, user=personas["bob"], branch="master", path=".devops.yml",
                                         text=TEXT, message="Edit", expected_head=HEAD)
    assert sha == OTHER
    api_calls = [c for c in rsps.calls if c.request.url.startswith(GL)]
    assert {c.request.headers["Authorization"] for c in api_calls} == {"Bearer glpat-new-token"}
    gl_pipeline.credential.refresh_from_db()
    assert gl_pipeline.credential.refresh_token == "gl-refresh-2"
    assert "glpat-" not in caplog.text and "gl-refresh" not in caplog.text


def test_a_revoked_token_is_a_clear_commit_error(rsps, gl_pipeline, personas):
    rsps.add(responses.POST, "https://gitlab.example.com/oauth/token", status=400,
             json={"error": "invalid_grant", "error_description": "The provided authorization grant is invalid"})
    with pytest.raises(editor.CommitError) as exc:
        editor.do_commit_pipeline_file(gl_pipeline, user=personas["bob"], branch="master", path=".devops.yml",
                                       text=TEXT, message="Edit", expected_head=HEAD)
    assert "refreshed" in str(exc.value) and "glpat-old-token" not in str(exc.value)
    assert not [c for c in rsps.calls if c.request.url.startswith(GL)]


def test_github_new_branch_is_deleted_again_when_the_write_fails(rsps, gh_pipeline, personas):
    rsps.add(responses.GET, f"{API}/git/ref/heads/master", json=_ref(HEAD))
    rsps.add(responses.GET, f"{API}/git/ref/heads/edit-2", status=404, json={"message": "Not Found"})
    rsps.add(responses.POST, f"{API}/git/refs", status=201, json=octokit("git-refs")[1]["response"])
    rsps.add(responses.GET, f"{API}/contents/.devops.yml", json=_content_example())
    rsps.add(responses.PUT, f"{API}/contents/.devops.yml", status=403, json={"message": "Forbidden"})
    rsps.add(responses.DELETE, f"{API}/git/refs/heads/edit-2", status=204)
    with pytest.raises(editor.CommitError):
        editor.do_commit_pipeline_file(gh_pipeline, user=personas["bob"], branch="master", path=".devops.yml",
                                       text=TEXT, message="m", expected_head=HEAD, new_branch="edit-2")
    assert len(_calls(rsps, "DELETE", f"{API}/git/refs/heads/edit-2")) == 1


def test_github_401_marks_the_credential_revoked_and_says_reconnect(rsps, gh_pipeline, personas):
    rsps.add(responses.GET, f"{API}/git/ref/heads/master", status=401, json={"message": "Bad credentials"})
    with pytest.raises(editor.CommitError) as exc:
        editor.do_commit_pipeline_file(gh_pipeline, user=personas["bob"], branch="master", path=".devops.yml",
                                       text=TEXT, message="m", expected_head=HEAD)
    assert "Bad credentials" in str(exc.value) and TOKEN not in str(exc.value)
    gh_pipeline.credential.refresh_from_db()
    assert gh_pipeline.credential.revoked


def test_a_pipeline_not_enabled_from_a_provider_repository_pushes_with_git(project, personas):
    from devops.models import Pipeline

    cred = make_credential(project, "github", token=TOKEN)  # a provider token used as a git password
    plain_git = Pipeline.objects.create(project=project, repository_url="https://git.example.com/a.git",
                                        credential=cred, display_name="a")
    spec = editor.repo_spec_of(plain_git)
    assert spec.api is None and type(scm_commit.store_for(spec)) is scm_commit.GitFileStore
    none = Pipeline.objects.create(project=project, repository_url="https://git.example.com/b.git", display_name="b")
    assert type(scm_commit.store_for(editor.repo_spec_of(none))) is scm_commit.GitFileStore
