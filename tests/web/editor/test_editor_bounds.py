"""The op endpoint's input is bounded: hostile JSON gets a 400 naming `op`, never a 500 or unbounded work."""
from __future__ import annotations

import json

import pytest

from tests.web.editor.conftest import PIPELINE_YAML
from tests.web.editor.test_editor_views import login, url

pytestmark = pytest.mark.django_db


def _op(client, pipe, op: str):
    return client.post(url(pipe, "/op"), {"text": PIPELINE_YAML, "op": op})


@pytest.mark.parametrize("op", [
    "[" * 50000 + "]" * 50000,  # deeper than Python's JSON decoder goes (RecursionError)
    '{"op": "set", "path": "stages[0].name", "value": ' + "[" * 500 + "]" * 500 + "}",  # decodes; too deep to apply
])
def test_deeply_nested_ops_are_refused(client, personas, edit_pipeline, op):
    r = _op(login(client, personas, "bob"), edit_pipeline, op)
    assert r.status_code == 400 and r.json()["field"] == "op"


def test_an_op_over_the_file_limit_is_refused(client, personas, edit_pipeline):
    big = json.dumps({"op": "set", "path": "stages[0].name", "value": "x" * 1_100_000})
    r = _op(login(client, personas, "bob"), edit_pipeline, big)
    assert r.status_code == 400 and "op: over" in r.json()["error"]



def test_a_branch_name_with_url_characters_survives_the_redirect(client, personas, edit_pipeline):
    """`feat&x=1#a` is a valid branch name: the editor reopens that branch, not `feat`."""
    from urllib.parse import parse_qs, urlsplit

    from tests.controller.conftest import git
    from tests.web.editor.test_editor_views import head_of

    c = login(client, personas, "bob")
    form = {"text": PIPELINE_YAML + "# note\n", "action": "new-branch", "branch": "main",
            "head": head_of(edit_pipeline.bare), "filename": ".devops.yml", "message": "m",
            "new_branch": "feat&x=1#a"}
    r = c.post(url(edit_pipeline, "/save"), form)
    assert r.status_code == 302
    assert parse_qs(urlsplit(r["Location"]).query) == {"branch": ["feat&x=1#a"]}
    assert git(edit_pipeline.bare, "rev-parse", "--verify", "-q", "refs/heads/feat&x=1#a")


@pytest.mark.parametrize("head", ["--output=/tmp/slipway-probe", "main", "HEAD~1", "abc123"])
def test_head_must_be_a_full_commit_id(client, personas, edit_pipeline, head):
    form = {"text": PIPELINE_YAML, "action": "diff", "branch": "main", "head": head, "filename": ".devops.yml"}
    r = login(client, personas, "bob").post(url(edit_pipeline, "/save"), form)
    assert r.status_code == 400 and "head: the full commit id" in r.content.decode()
