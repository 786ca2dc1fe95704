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

