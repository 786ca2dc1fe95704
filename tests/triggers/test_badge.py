"""The status badge: public but unguessable, per branch, escaped, revalidated with an ETag."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from devops.models import ExecutionState as S
from devops.models import Pipeline


@pytest.fixture
def pipe(project, db):
    return Pipeline.objects.create(project=project, repository_url="/nonexistent", display_name='<b>"x"</b> & co')


def _run(pipeline, branch, state):
    from tests.controller.conftest import new_execution

    e = new_execution(pipeline, branch=branch)
    type(e).objects.filter(pk=e.pk).update(execution_state=state)
    return e


def test_badge_shows_the_newest_run_of_the_branch(client, pipe):
    from devops.triggers.badge import badge_token, badge_url

    _run(pipe, "main", S.SUCCESS)
    _run(pipe, "dev", S.FAILED)
    url = f"/p/{pipe.project_id}/pipelines/{pipe.name}/badge.svg"
    token = badge_token(pipe)
    assert badge_url(pipe, "main").endswith(f"{url}?branch=main&token={token}")
    main = client.get(url, {"branch": "main", "token": token})
    assert main.status_code == 200
    assert main["Content-Type"].startswith("image/svg+xml")
    assert main["Cache-Control"] == "no-cache" and main["ETag"]
    svg = main.content.decode()
    root = ET.fromstring(svg)  # well-formed XML although the name holds <, ", &
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert texts == ['<b>"x"</b> & co main', "passing"]
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    dev = client.get(url, {"branch": "dev", "token": token})
    assert "failing" in dev.content.decode() and "#e05d44" in dev.content.decode()
    none = client.get(url, {"branch": "nosuch", "token": token})
    assert "no runs" in none.content.decode()


def test_unchanged_state_is_304_and_a_new_run_changes_the_etag(client, pipe):
    from devops.triggers.badge import badge_token

    url = f"/p/{pipe.project_id}/pipelines/{pipe.name}/badge.svg"
    q = {"branch": "main", "token": badge_token(pipe)}
    _run(pipe, "main", S.SUCCESS)
    first = client.get(url, q)
    again = client.get(url, q, headers={"If-None-Match": first["ETag"]})
    assert again.status_code == 304 and again["ETag"] == first["ETag"] and again.content == b""
    _run(pipe, "main", S.BUILDING)
    changed = client.get(url, q, headers={"If-None-Match": first["ETag"]})
    assert changed.status_code == 200 and changed["ETag"] != first["ETag"]
    assert "running" in changed.content.decode()


def test_wrong_or_missing_token_is_404(client, pipe, project):
    from devops.triggers.badge import badge_token

    url = f"/p/{pipe.project_id}/pipelines/{pipe.name}/badge.svg"
    other = Pipeline.objects.create(project=project, repository_url="/nonexistent")
    assert badge_token(other) != badge_token(pipe)
    for params in ({}, {"token": "0" * 32}, {"token": badge_token(other)}):
        assert client.get(url, params).status_code == 404
    assert client.get(f"/p/{pipe.project_id}/pipelines/p-nosuch/badge.svg",
                      {"token": badge_token(pipe)}).status_code == 404
    assert client.get(f"/p/other/pipelines/{pipe.name}/badge.svg", {"token": badge_token(pipe)}).status_code == 404
