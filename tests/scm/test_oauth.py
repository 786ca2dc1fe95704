"""Connecting a provider account through allauth's real views (Django test client), provider side by `responses`.

The profile bodies are allauth's own test bodies (recordings/SOURCES.md).
"""
from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
import responses
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken

from devops.models import Project, SourceCodeCredential
from tests.scm.conftest import recording

pytestmark = pytest.mark.django_db


def _connect(client, project_id: str, kind: str) -> dict:
    resp = client.post(f"/p/{project_id}/repositories/connect/{kind}")
    assert resp.status_code == 302, resp.content[:500]
    url = urlparse(resp["Location"])
    return {"url": url, "query": {k: v[0] for k, v in parse_qs(url.query).items()}}


def test_owner_sets_up_the_github_app_and_the_secret_is_write_only(client, personas, project):
    client.force_login(personas["alice"])
    page = client.get(f"/p/{project.id}/settings/providers/github")
    assert page.status_code == 200
    html = page.content.decode()
    assert "http://127.0.0.1:8000/accounts/github/login/callback/" in html  # SLIPWAY_PUBLIC_URL + allauth's path
    assert "admin:repo_hook" in html and "<code>repo</code>" in html
    resp = client.post(f"/p/{project.id}/settings/providers/github",
                       {"client_id": "Iv1.abc", "client_secret": "s3cr3t-value", "enabled": "on"})
    assert resp.status_code == 302
    app = SocialApp.objects.get(provider="github")
    assert app.client_id == "Iv1.abc" and app.secret == "" and app.settings["hidden"] is True
    assert project.provider_configs.get(type="github").client_secret == "s3cr3t-value"
    again = client.get(f"/p/{project.id}/settings/providers/github").content.decode()
    assert "s3cr3t-value" not in again and "A secret is stored" in again
    # the encrypted column holds no plaintext
    from django.db import connection
    with connection.cursor() as cur:
        cur.execute("SELECT client_secret FROM devops_sourcecodeproviderconfig")
        assert "s3cr3t-value" not in cur.fetchone()[0]


def test_provider_page_is_owner_only(client, personas, project):
    client.force_login(personas["bob"])
    assert client.get(f"/p/{project.id}/settings/providers/github").status_code == 403
    client.force_login(personas["charlie"])
    assert client.get(f"/p/{project.id}/settings/providers/github").status_code == 404


def test_bitbucket_server_needs_its_hostname(client, personas, project):
    client.force_login(personas["alice"])
    resp = client.post(f"/p/{project.id}/settings/providers/bitbucketserver",
                       {"client_id": "x", "client_secret": "y", "enabled": "on"})
    assert resp.status_code == 400 and b"Bitbucket Server needs its host name" in resp.content


def test_github_connect_keeps_the_token_only_encrypted(client, personas, project, github_config, rsps):
    """allauth's connect: authorize redirect, token exchange, profile; a credential and no SocialToken row."""
    client.force_login(personas["bob"])
    start = _connect(client, project.id, "github")
    assert start["url"].netloc == "github.com" and start["url"].path == "/login/oauth/authorize"
    assert start["query"]["client_id"] == "Iv1.gh-demo"
    assert set(start["query"]["scope"].replace(",", " ").split()) == {"repo", "admin:repo_hook"}
    # GitHub's token answer (its documented JSON form) and the profile body from allauth's own tests
    rsps.add(responses.POST, "https://github.com/login/oauth/access_token",
             json={"access_token": "gho_16C7e42F292c6912E7710c838347Ae178B4a", "scope": "repo,admin:repo_hook",
                   "token_type": "bearer"})
    rsps.add(responses.GET, "https://api.github.com/user", body=recording("allauth-github-user.json"),
             content_type="application/json")
    rsps.add(responses.GET, "https://api.github.com/user/emails", json=[])
    done = client.get("/accounts/github/login/callback/", {"code": "c0de", "state": start["query"]["state"]})
    assert done.status_code == 302 and done["Location"] == f"/p/{project.id}/repositories/"
    token_call = next(c for c in rsps.calls if c.request.url.startswith("https://github.com/login/oauth/access_token"))
    assert "gh-client-secret" in (token_call.request.body or "")  # the secret, decrypted in memory only
    cred = SourceCodeCredential.objects.get(project=project, source_code_type="github")
    assert cred.login_name == "pennersr" and cred.user == personas["bob"]
    assert cred.access_token == "gho_16C7e42F292c6912E7710c838347Ae178B4a"
    assert SocialAccount.objects.filter(user=personas["bob"], provider="github").exists()
    assert SocialToken.objects.count() == 0
    from django.db import connection
    with connection.cursor() as cur:
        cur.execute("SELECT access_token FROM devops_sourcecodecredential")
        assert "gho_16C7" not in cur.fetchone()[0]
    page = client.get(f"/p/{project.id}/repositories/").content.decode()
    assert "pennersr" in page and "gho_16C7" not in page


def test_two_projects_each_use_their_own_github_app(client, personas, project, github_config, rsps):
    from devops.controller.projects import do_create_project
    from devops.scm.providers import PROVIDERS
    from devops.web.views_scm import save_app

    other = do_create_project("other", owner=personas["bob"])
    save_app(other, PROVIDERS.get("github"), None,
             {"client_id": "Iv1.other", "client_secret": "other-secret", "hostname": "", "enabled": True})
    assert SocialApp.objects.filter(provider="github").count() == 2
    client.force_login(personas["bob"])
    assert _connect(client, project.id, "github")["query"]["client_id"] == "Iv1.gh-demo"
    assert _connect(client, other.id, "github")["query"]["client_id"] == "Iv1.other"
    # the login page offers neither (hidden apps connect repositories, they sign nobody up)
    client.logout()
    assert b"/accounts/github/login/" not in client.get("/accounts/login/").content
    assert Project.objects.count() == 2


def test_github_enterprise_app_uses_its_host(client, personas, project, rsps):
    from devops.scm.providers import PROVIDERS
    from devops.web.views_scm import save_app

    save_app(project, PROVIDERS.get("github"), None,
             {"client_id": "ghe-id", "client_secret": "ghe-secret", "hostname": "github.example.com", "enabled": True})
    client.force_login(personas["bob"])
    start = _connect(client, project.id, "github")
    assert start["url"].netloc == "github.example.com"
    rsps.add(responses.POST, "https://github.example.com/login/oauth/access_token",
             json={"access_token": "ghe-token", "token_type": "bearer", "scope": "repo"})
    rsps.add(responses.GET, "https://github.example.com/api/v3/user", body=recording("allauth-github-user.json"),
             content_type="application/json")
    rsps.add(responses.GET, "https://github.example.com/api/v3/user/emails", json=[])
    done = client.get("/accounts/github/login/callback/", {"code": "c", "state": start["query"]["state"]})
    assert done.status_code == 302
    assert SourceCodeCredential.objects.get(project=project).access_token == "ghe-token"


def test_gitlab_connect_stores_the_refresh_token_and_expiry(client, personas, project, gitlab_config, rsps):
    client.force_login(personas["bob"])
    start = _connect(client, project.id, "gitlab")
    assert start["url"].netloc == "gitlab.example.com" and start["query"]["scope"] == "api"
    rsps.add(responses.POST, "https://gitlab.example.com/oauth/token",
             json={"access_token": "gl-access-1", "token_type": "Bearer", "expires_in": 7200,
                   "refresh_token": "gl-refresh-1", "scope": "api", "created_at": 1700000000})
    rsps.add(responses.GET, "https://gitlab.example.com/api/v4/user", body=recording("allauth-gitlab-user.json"),
             content_type="application/json")
    done = client.get("/accounts/gitlab/login/callback/", {"code": "c", "state": start["query"]["state"]})
    assert done.status_code == 302, done.content[:300]
    cred = SourceCodeCredential.objects.get(project=project, source_code_type="gitlab")
    assert (cred.login_name, cred.access_token, cred.refresh_token) == ("mr.bob", "gl-access-1", "gl-refresh-1")
    assert cred.expiry is not None and SocialToken.objects.count() == 0
    extra = SocialAccount.objects.get().extra_data
    assert extra["username"] == "mr.bob" and "private_token" not in extra  # the recorded body carries one


def test_connect_needs_an_enabled_app_and_write_access(client, personas, project):
    client.force_login(personas["ronnie"])
    assert client.post(f"/p/{project.id}/repositories/connect/github").status_code == 403
    client.force_login(personas["bob"])
    resp = client.post(f"/p/{project.id}/repositories/connect/github")
    assert resp.status_code == 302 and resp["Location"] == f"/p/{project.id}/repositories/"


def test_bitbucket_server_connect_through_slipways_provider(client, personas, project, rsps):
    """allauth has no Bitbucket Server provider: Slipway's, through allauth's own OAuth2 views.

    Answers constructed after Atlassian's documentation (recordings/SOURCES.md): the token
    endpoint's RFC 6749 body, `whoami`'s plain-text slug, `users/{slug}`'s user object.
    """
    from devops.scm.providers import PROVIDERS
    from devops.web.views_scm import save_app

    save_app(project, PROVIDERS.get("bitbucketserver"), None,
             {"client_id": "bbs-id", "client_secret": "bbs-secret", "hostname": "bitbucket.example.com",
              "enabled": True})
    client.force_login(personas["bob"])
    start = _connect(client, project.id, "bitbucketserver")
    assert start["url"].netloc == "bitbucket.example.com"
    assert start["url"].path == "/rest/oauth2/latest/authorize" and start["query"]["scope"] == "REPO_ADMIN"
    base = "https://bitbucket.example.com"
    rsps.add(responses.POST, f"{base}/rest/oauth2/latest/token",
             json={"scope": "REPO_ADMIN", "access_token": "bbs-access", "expires_in": 7200,
                   "token_type": "bearer", "refresh_token": "bbs-refresh"})
    rsps.add(responses.GET, f"{base}/plugins/servlet/applinks/whoami", body="jdoe", content_type="text/plain")
    rsps.add(responses.GET, f"{base}/rest/api/latest/users/jdoe",
             json={"name": "jdoe", "emailAddress": "jdoe@example.com", "active": True, "displayName": "Jane Doe",
                   "id": 101, "slug": "jdoe", "type": "NORMAL",
                   "links": {"self": [{"href": "https://bitbucket.example.com/users/jdoe"}]}})
    done = client.get("/accounts/bitbucketserver/login/callback/", {"code": "c", "state": start["query"]["state"]})
    assert done.status_code == 302, done.content[:500]
    cred = SourceCodeCredential.objects.get(project=project, source_code_type="bitbucketserver")
    assert (cred.login_name, cred.access_token, cred.refresh_token) == ("jdoe", "bbs-access", "bbs-refresh")
    assert cred.html_url == "https://bitbucket.example.com/users/jdoe"
    for call in rsps.calls[1:]:
        assert call.request.headers["Authorization"] == "Bearer bbs-access"
    assert SocialToken.objects.count() == 0


def test_bitbucket_cloud_connect(client, personas, project, bitbucket_config, rsps):
    """Profile answer constructed after Bitbucket's documented user object (allauth 65.21's uid is
    `account_id`, which the older body in allauth's own tests does not carry)."""
    client.force_login(personas["bob"])
    start = _connect(client, project.id, "bitbucketcloud")
    assert start["url"].netloc == "bitbucket.org" and start["url"].path == "/site/oauth2/authorize"
    assert set(start["query"]["scope"].split()) == {"repository", "repository:admin", "webhook"}
    rsps.add(responses.POST, "https://bitbucket.org/site/oauth2/access_token",
             json={"access_token": "bb-access", "scopes": "repository webhook", "expires_in": 7200,
                   "refresh_token": "bb-refresh", "token_type": "bearer"})
    rsps.add(responses.GET, "https://api.bitbucket.org/2.0/user",
             json={"account_id": "557058:c0b72ad0-1cb5-4018-9cdc-0cde8492c443", "display_name": "tutorials account",
                   "username": "tutorials", "uuid": "{c788b2da-b7a2-404c-9e26-d3f077557007}", "type": "user",
                   "links": {"html": {"href": "https://bitbucket.org/tutorials"}}})
    rsps.add(responses.GET, "https://api.bitbucket.org/2.0/user/emails", json={"values": []})
    done = client.get("/accounts/bitbucket_oauth2/login/callback/", {"code": "c", "state": start["query"]["state"]})
    assert done.status_code == 302, done.content[:500]
    cred = SourceCodeCredential.objects.get(project=project, source_code_type="bitbucketcloud")
    assert (cred.login_name, cred.refresh_token, cred.html_url) == ("tutorials", "bb-refresh",
                                                                    "https://bitbucket.org/tutorials")
    profile = next(c for c in rsps.calls if c.request.url.startswith("https://api.bitbucket.org/2.0/user"))
    assert profile.request.headers["Authorization"] == "Bearer bb-access"
    assert cred.git_username() == "x-token-auth"
