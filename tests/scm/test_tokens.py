"""Token refresh (GitLab pair invalidation, Bitbucket rotation, Bearer only) and revoked -> reconnect."""
from __future__ import annotations

import json
import logging
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
import responses
from django.utils import timezone

from devops.controller import scmcreds
from devops.models import SourceCodeCredential
from devops.scm import http
from tests.scm.conftest import make_credential

pytestmark = pytest.mark.django_db
GITLAB_API = "https://gitlab.example.com/api/v4"


def _gitlab_token_endpoint(rsps, pairs: dict[str, tuple[str, str]]):
    """A GitLab /oauth/token that honours each refresh token once (GitLab revokes the old pair on use)."""
    live = dict(pairs)

    def answer(request):
        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        new = live.pop(form.get("refresh_token", ""), None)
        if form.get("grant_type") != "refresh_token" or new is None:
            return 400, {}, '{"error":"invalid_grant","error_description":"The provided authorization grant is invalid"}'
        return 200, {"Content-Type": "application/json"}, json.dumps(
            {"access_token": new[0], "token_type": "Bearer", "expires_in": 7200, "refresh_token": new[1],
             "scope": "api", "created_at": 1700000000})

    rsps.add_callback(responses.POST, "https://gitlab.example.com/oauth/token", callback=answer)


def test_gitlab_token_is_refreshed_before_it_expires_and_the_new_pair_is_stored(rsps, project, gitlab_config):
    cred = make_credential(project, "gitlab", token="old-access", refresh="old-refresh",
                           expiry=timezone.now() + timedelta(minutes=3))
    _gitlab_token_endpoint(rsps, {"old-refresh": ("new-access", "new-refresh")})
    rsps.add(responses.GET, f"{GITLAB_API}/projects", json=[])
    assert scmcreds.refresh_repositories(cred) == 0
    row = SourceCodeCredential.objects.get(pk=cred.pk)
    assert (row.access_token, row.refresh_token) == ("new-access", "new-refresh")
    assert row.expiry > timezone.now() + timedelta(hours=1)
    token_form = parse_qs(rsps.calls[0].request.body)
    assert token_form["client_id"] == ["gl-app-id"] and token_form["client_secret"] == ["gl-client-secret"]
    assert token_form["redirect_uri"] == ["http://127.0.0.1:8000/accounts/gitlab/login/callback/"]
    assert rsps.calls[1].request.headers["Authorization"] == "Bearer new-access"
    # The old pair is dead at GitLab: a second refresh must use the stored new refresh token.
    SourceCodeCredential.objects.filter(pk=cred.pk).update(expiry=timezone.now())
    _gitlab_token_endpoint(rsps, {"new-refresh": ("third-access", "third-refresh")})
    scmcreds.refresh(SourceCodeCredential.objects.get(pk=cred.pk))
    assert SourceCodeCredential.objects.get(pk=cred.pk).refresh_token == "third-refresh"


def test_a_refused_refresh_marks_the_credential_revoked(rsps, project, gitlab_config):
    cred = make_credential(project, "gitlab", refresh="already-used", expiry=timezone.now())
    _gitlab_token_endpoint(rsps, {})
    with pytest.raises(http.Unauthorized):
        scmcreds.refresh_repositories(cred)
    row = SourceCodeCredential.objects.get(pk=cred.pk)
    assert row.revoked and "could not be refreshed" in row.last_error


def test_bitbucket_refresh_rotates_the_refresh_token_with_basic_client_auth(rsps, project, bitbucket_config):
    cred = make_credential(project, "bitbucketcloud", token="bb-old", refresh="bb-r1",
                           expiry=timezone.now() + timedelta(minutes=1))
    rsps.add(responses.POST, "https://bitbucket.org/site/oauth2/access_token",
             json={"access_token": "bb-new", "scope": "repository webhook", "expires_in": 7200,
                   "refresh_token": "bb-r2", "token_type": "bearer"})
    rsps.add(responses.GET, "https://api.bitbucket.org/2.0/repositories", json={"values": []})
    scmcreds.refresh_repositories(cred)
    token_call, list_call = rsps.calls
    assert token_call.request.headers["Authorization"].startswith("Basic ")  # client_id:secret, never the user token
    assert parse_qs(token_call.request.body) == {"grant_type": ["refresh_token"], "refresh_token": ["bb-r1"]}
    assert list_call.request.headers["Authorization"] == "Bearer bb-new"
    assert "access_token" not in list_call.request.url
    row = SourceCodeCredential.objects.get(pk=cred.pk)
    assert (row.access_token, row.refresh_token) == ("bb-new", "bb-r2")


def test_the_controller_refreshes_due_tokens_unasked(rsps, project, bitbucket_config):
    make_credential(project, "bitbucketcloud", token="a", refresh="r", expiry=timezone.now() + timedelta(minutes=5))
    rsps.add(responses.POST, "https://bitbucket.org/site/oauth2/access_token",
             json={"access_token": "b", "expires_in": 7200, "refresh_token": "r2", "token_type": "bearer"})
    assert scmcreds.refresh_due_credentials() is True
    assert SourceCodeCredential.objects.get().refresh_token == "r2"
    assert scmcreds.refresh_due_credentials() is False  # nothing due any more


def test_revoked_github_token_shows_reconnect_and_never_leaks(client, personas, rsps, project, github_config, caplog):
    cred = make_credential(project, "github", token="gho_revoked_token_value", user=personas["bob"])
    rsps.add(responses.GET, "https://api.github.com/user/repos", status=401,
             json={"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
    client.force_login(personas["bob"])
    caplog.set_level(logging.DEBUG)
    resp = client.post(f"/p/{project.id}/repositories/refresh/{cred.pk}", follow=True)
    html = resp.content.decode()
    assert "refused the token" in html and "Reconnect" in html and "revoked" in html
    assert SourceCodeCredential.objects.get(pk=cred.pk).revoked
    assert "gho_revoked_token_value" not in html and "gho_revoked_token_value" not in caplog.text
    # reconnect is allauth's connect again: the redirect to GitHub
    again = client.post(f"/p/{project.id}/repositories/connect/github")
    assert again.status_code == 302 and again["Location"].startswith("https://github.com/login/oauth/authorize")


@pytest.mark.django_db(transaction=True)
def test_two_processes_refreshing_at_once_use_the_refresh_token_once(personas, project, gitlab_config):
    """GitLab invalidates a pair on use: the row lock makes the second refresher wait and take the new pair."""
    import threading

    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("row locks across connections: PostgreSQL's (SQLite serialises whole transactions)")
    cred = make_credential(project, "gitlab", token="old-access", refresh="old-refresh",
                           expiry=timezone.now() + timedelta(minutes=1))
    calls, gate = [], threading.Event()

    def answer(request):
        calls.append(request.body)
        gate.wait(5)  # hold the lock while the other thread arrives
        if len(calls) > 1:
            return 400, {}, json.dumps({"error": "invalid_grant"})
        return 200, {"Content-Type": "application/json"}, json.dumps(
            {"access_token": "new-access", "token_type": "Bearer", "expires_in": 7200,
             "refresh_token": "new-refresh", "created_at": 1700000000})

    errors = []

    def worker():
        try:
            scmcreds.refresh(SourceCodeCredential.objects.get(pk=cred.pk))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, "https://gitlab.example.com/oauth/token", callback=answer)
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        threading.Timer(0.5, gate.set).start()
        for t in threads:
            t.join(20)
    assert errors == [] and len(calls) == 1
    row = SourceCodeCredential.objects.get(pk=cred.pk)
    assert (row.access_token, row.refresh_token, row.revoked) == ("new-access", "new-refresh", False)
