"""GET .../stages/<s>/steps/<t>/log/search: the whole stored log, members only."""
from __future__ import annotations

import pytest

from devops.logs import LogKey, get_log_store
from tests.logs.conftest import log_settings  # noqa: F401


@pytest.fixture
def searchable(log_settings, world):  # noqa: F811
    execution = world["executions"][0]
    w = get_log_store().writer(LogKey(execution.name, 1, 0))
    w.write(b"".join(b"line %d\n" % i for i in range(1, 5001)) + b"the needle\nmore\nneedle again\n")
    w.close()
    return execution


def _url(e, q="needle", **params):
    extra = "".join(f"&{k}={v}" for k, v in params.items())
    return f"/api/v1/projects/{e.project_id}/executions/{e.name}/stages/1/steps/0/log/search?q={q}{extra}"


@pytest.mark.parametrize(("persona", "status"), [("alice", 200), ("bob", 200), ("ronnie", 200), ("charlie", 404)])
def test_members_search_and_others_get_404(searchable, client_as, persona, status):
    r = client_as(persona).get(_url(searchable))
    assert r.status_code == status
    if status == 200:
        assert r.json() == {"query": "needle", "count": 2, "line": 5001, "ordinal": 1, "lines": 5003,
                            "size": r.json()["size"], "complete": True}


def test_anonymous_is_refused(searchable, client_as):
    assert client_as(None).get(_url(searchable)).status_code in (401, 403)


def test_next_and_previous_wrap(searchable, client_as):
    c = client_as("ronnie")
    assert c.get(_url(searchable, **{"from": 5001})).json()["line"] == 5003
    assert c.get(_url(searchable, **{"from": 5003})).json()["line"] == 5001
    back = c.get(_url(searchable, **{"from": 5001, "direction": "prev"})).json()
    assert (back["line"], back["ordinal"]) == (5003, 2)


@pytest.mark.parametrize("query", ["", "x" * 1025])
def test_a_bad_query_is_a_400(searchable, client_as, query):
    assert client_as("bob").get(_url(searchable, q=query)).status_code == 400
    assert client_as("bob").get(_url(searchable, direction="up")).status_code == 400
