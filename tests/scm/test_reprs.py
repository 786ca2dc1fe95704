"""Secrets never show in a repr (a traceback's locals, a debug log of an object)."""
from __future__ import annotations

from devops.scm.base import App, Token
from devops.scm.git import Auth
from devops.scm.github import GitHubProvider
from devops.scm.http import Client


def test_no_secret_in_any_repr():
    objs = [App("id", client_secret="app-s3cret", hostname="h"), Token("acc-s3cret", "ref-s3cret", 1.0),
            Auth(token="git-s3cret", username="u", ssh_private_key="key-s3cret"),
            Client("https://x", authorization="Bearer cli-s3cret"),
            GitHubProvider(App("id", client_secret="app-s3cret"), "tok-s3cret").client]
    for obj in objs:
        assert "s3cret" not in repr(obj), repr(obj)
    assert "id" in repr(objs[0]) and "u" in repr(objs[2])  # the rest is still there to debug with
