"""Accounts: sign-up is closed unless SLIPWAY_SIGNUP=open; `user add` makes accounts (issue 8, point 4)."""
from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client


def signup(client: Client, name: str = "mallory"):
    return client.post("/accounts/signup/", {"username": name, "password1": "Str0ng-pass-99x",
                                             "password2": "Str0ng-pass-99x"})


def test_a_stranger_cannot_create_an_account(personas):
    before = get_user_model().objects.count()
    response = signup(Client())
    assert response.status_code == 200
    assert b"Sign-up is closed" in response.content
    assert get_user_model().objects.count() == before
    assert not get_user_model().objects.filter(username="mallory").exists()


def test_the_login_page_says_signup_is_closed_and_who_to_ask(db):
    page = Client().get("/accounts/login/").content.decode()
    assert "Sign-up is closed" in page and "Ask a Slipway administrator" in page
    assert "/accounts/signup/" not in page


def test_open_signup_makes_an_account_with_no_project_access(settings, world):
    settings.SLIPWAY_SIGNUP = "open"
    assert "/accounts/signup/" in Client().get("/accounts/login/").content.decode()
    client = Client()
    response = signup(client)
    assert response.status_code == 302
    user = get_user_model().objects.get(username="mallory")
    project = world["project"].id
    # Logged in by the sign-up itself (session), yet a stranger to every project.
    assert client.get(f"/api/v1/projects/{project}/").status_code == 404
    assert client.get(f"/api/v1/projects/{project}/pipelines/").status_code == 404
    assert client.get("/api/v1/projects/").json()["results"] == []
    assert not user.is_staff and not user.is_superuser


def test_user_add_generates_a_password_printed_once(db):
    out = io.StringIO()
    call_command("user", "add", "dora", "--email", "dora@example.com", stdout=out)
    password = out.getvalue().split("password: ")[1].strip()
    user = get_user_model().objects.get(username="dora")
    assert user.check_password(password) and user.email == "dora@example.com" and not user.is_superuser


def test_user_add_reads_the_password_from_stdin(db):
    out = io.StringIO()
    call_command("user", "add", "erin", "--superuser", "--password-stdin",
                 stdin=io.StringIO("s3cret-from-stdin\n"), stdout=out)
    user = get_user_model().objects.get(username="erin")
    assert user.check_password("s3cret-from-stdin") and user.is_superuser
    assert "s3cret-from-stdin" not in out.getvalue()


def test_user_add_refuses_an_existing_name(personas):
    with pytest.raises(CommandError, match="exists"):
        call_command("user", "add", "alice", stdout=io.StringIO())
