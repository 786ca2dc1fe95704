"""A project's provider app connects repositories; it never signs anyone in.

The apps' hosts are typed by project owners, so the server behind one may
answer any profile. Were allauth's "login" process allowed through such an
app, an owner running a fake GitHub Enterprise could answer the (public)
numeric id of another user's connected GitHub account and be signed in as
that user. Only `process=connect`, by a signed-in user, goes through.
"""
from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
import responses
from allauth.socialaccount.models import SocialAccount

from devops.controller.projects import do_create_project
from devops.scm.providers import PROVIDERS
from devops.web.views_scm import save_app

pytestmark = pytest.mark.django_db


def test_a_fake_provider_cannot_sign_its_owner_in_as_another_user(client, personas, project, rsps):
    # bob connected his GitHub account (uid 583231, public) to Slipway earlier
    SocialAccount.objects.create(user=personas["bob"], provider="github", uid="583231", extra_data={})
    # charlie owns a project of his own, with a "GitHub Enterprise" app whose host he runs
    mine = do_create_project("mine", owner=personas["charlie"])
    save_app(mine, PROVIDERS.get("github"), None,
             {"client_id": "evil-id", "client_secret": "evil-secret", "hostname": "ghe.attacker.example",
              "enabled": True})
    client.force_login(personas["charlie"])
    assert client.post(f"/p/{mine.id}/repositories/connect/github").status_code == 302  # the session holds his app
    start = client.post("/accounts/github/login/?process=login")
    rsps.add(responses.POST, "https://ghe.attacker.example/login/oauth/access_token",
             json={"access_token": "fake", "token_type": "bearer", "scope": "repo"})
    rsps.add(responses.GET, "https://ghe.attacker.example/api/v3/user",
             json={"id": 583231, "login": "bob", "name": "Bob"})
    rsps.add(responses.GET, "https://ghe.attacker.example/api/v3/user/emails", json=[])
    assert start.status_code == 302 and urlparse(start["Location"]).netloc == "ghe.attacker.example"
    state = parse_qs(urlparse(start["Location"]).query)["state"][0]
    done = client.get("/accounts/github/login/callback/", {"code": "c", "state": state})
    assert done.status_code == 403
    assert client.get("/account/tokens/").wsgi_request.user.username == "charlie"


def test_signed_out_login_through_a_project_app_is_refused(client, personas, project, github_config, rsps):
    SocialAccount.objects.create(user=personas["bob"], provider="github", uid="583231", extra_data={})
    start = client.post("/accounts/github/login/?process=login")
    assert start.status_code == 302 and urlparse(start["Location"]).netloc == "github.com"
    rsps.add(responses.POST, "https://github.com/login/oauth/access_token",
             json={"access_token": "t", "token_type": "bearer", "scope": "repo"})
    rsps.add(responses.GET, "https://api.github.com/user", json={"id": 583231, "login": "bob"})
    rsps.add(responses.GET, "https://api.github.com/user/emails", json=[])
    state = parse_qs(urlparse(start["Location"]).query)["state"][0]
    assert client.get("/accounts/github/login/callback/", {"code": "c", "state": state}).status_code == 403
    assert "_auth_user_id" not in client.session


def test_a_login_with_no_app_chosen_is_a_clear_refusal_when_several_projects_have_one(client, personas, project):
    """Two projects' GitHub apps and no connect in progress: allauth's one-app lookup must not
    become a 500 (MultipleObjectsReturned); project apps answer only the connect that chose them."""
    for name, owner in (("one", "alice"), ("two", "charlie")):
        mine = do_create_project(name, owner=personas[owner])
        save_app(mine, PROVIDERS.get("github"), None,
                 {"client_id": f"{name}-id", "client_secret": f"{name}-secret", "hostname": "", "enabled": True})
    client.raise_request_exception = False
    for method in (client.get, client.post):
        answer = method("/accounts/github/login/?process=login")
        assert 400 <= answer.status_code < 500, answer.status_code
