"""Commit status: pending when a run builds, the result at the end; retried on 502/429; never blocking."""
from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
import responses
from django.utils import timezone

from devops.controller import commit_status, scmcreds
from devops.controller.commit_status import tick_commit_status
from devops.models import CommitStatus, PipelineExecution, SourceCodeRepository
from tests.scm.conftest import check_github_body, make_credential, octokit, openapi_operation

pytestmark = pytest.mark.django_db
COMMIT = "7fd1a60b01f91b314f59955a4e4d4e80d8edf11d"
STATUS_URL = f"https://api.github.com/repos/octocat/Hello-World/statuses/{COMMIT}"


@pytest.fixture
def execution(rsps, project, github_config, personas):
    commit_status._last_credentials = 0.0
    cred = make_credential(project, "github", token="gho_status_token", user=personas["bob"])
    rsps.add(responses.GET, "https://api.github.com/user/repos", json=openapi_operation("GET /user/repos")["response_example"])
    scmcreds.refresh_repositories(cred)
    rsps.add(responses.POST, "https://api.github.com/repos/octocat/Hello-World/hooks", status=201,
             json=openapi_operation("POST /repos/{owner}/{repo}/hooks")["response_example"])
    pipeline = scmcreds.enable(SourceCodeRepository.objects.get(full_name="octocat/Hello-World"))
    return PipelineExecution.objects.create(project=project, pipeline=pipeline, name=f"{pipeline.name}-1", run=1,
                                            branch="master", commit=COMMIT, execution_state="Waiting")


def _set(e, state):
    PipelineExecution.objects.filter(pk=e.pk).update(execution_state=state)


def _posted(rsps) -> list[dict]:
    return [json.loads(c.request.body) for c in rsps.calls if c.request.url == STATUS_URL]


def test_pending_then_success_with_a_link_to_the_run(rsps, execution):
    ok = octokit("create-status")[0]["response"]  # a recorded 201 answer of the statuses API
    rsps.add(responses.POST, STATUS_URL, json=ok, status=201)
    assert tick_commit_status() is False  # Waiting: nothing said yet
    _set(execution, "Building")
    assert tick_commit_status() is True
    assert tick_commit_status() is False  # unchanged: no second call
    _set(execution, "Success")
    assert tick_commit_status() is True
    sent = _posted(rsps)
    assert [s["state"] for s in sent] == ["pending", "success"]
    for body in sent:
        check_github_body("POST /repos/{owner}/{repo}/statuses/{sha}", json.dumps(body).encode())
        assert body["target_url"] == (f"http://127.0.0.1:8000/p/{execution.project_id}/pipelines/"
                                      f"{execution.pipeline.name}/runs/1/")
    row = CommitStatus.objects.get(execution=execution)
    assert row.sent == "success" and row.done
    assert tick_commit_status() is False


def test_a_502_is_retried_with_backoff_then_succeeds(rsps, execution, caplog):
    rsps.add(responses.POST, STATUS_URL, status=502, body=b"<html>Bad Gateway</html>")
    rsps.add(responses.POST, STATUS_URL, status=201, json=octokit("create-status")[0]["response"])
    _set(execution, "Failed")
    caplog.set_level(logging.DEBUG)
    assert tick_commit_status() is True
    row = CommitStatus.objects.get(execution=execution)
    assert (row.sent, row.attempts, row.done) == ("", 1, False) and row.retry_at > timezone.now()
    assert "502" in row.last_error
    assert tick_commit_status() is False  # not due yet: no call
    CommitStatus.objects.filter(pk=row.pk).update(retry_at=timezone.now() - timedelta(seconds=1))
    assert tick_commit_status() is True
    row.refresh_from_db()
    assert (row.sent, row.attempts, row.done, row.last_error) == ("failure", 0, True, "")
    assert [s["state"] for s in _posted(rsps)] == ["failure", "failure"]
    assert "gho_status_token" not in caplog.text


def test_429_honours_retry_after_and_the_attempts_are_bounded(rsps, execution, settings):
    settings.SLIPWAY_COMMIT_STATUS_ATTEMPTS = 2
    rsps.add(responses.POST, STATUS_URL, status=429, headers={"Retry-After": "120"}, json={"message": "slow down"})
    _set(execution, "Success")
    tick_commit_status()
    row = CommitStatus.objects.get(execution=execution)
    assert row.retry_at - timezone.now() > timedelta(seconds=100)
    CommitStatus.objects.filter(pk=row.pk).update(retry_at=timezone.now())
    tick_commit_status()
    row.refresh_from_db()
    assert row.done and row.sent == "success" and "429" in row.last_error  # given up, recorded


def test_a_revoked_token_gives_up_without_touching_the_run(rsps, execution):
    rsps.add(responses.POST, STATUS_URL, status=401, json={"message": "Bad credentials"})
    _set(execution, "Success")
    assert tick_commit_status() is True
    row = CommitStatus.objects.get(execution=execution)
    assert row.done and "401" in row.last_error
    execution.refresh_from_db()
    assert execution.execution_state == "Success"
    assert execution.pipeline.credential.__class__.objects.get().revoked


def test_backoff_doubles_to_five_minutes():
    assert [commit_status.backoff(n) for n in (1, 2, 3, 10)] == [2.0, 4.0, 8.0, 300.0]
    assert commit_status.backoff(1, retry_after=60) == 60


def test_an_unexpected_error_is_recorded_and_the_pass_goes_on(rsps, execution, monkeypatch):
    def broken(cred, fn):
        raise RuntimeError("provider module bug")

    monkeypatch.setattr(commit_status.scmcreds, "call", broken)  # at the place of use
    _set(execution, "Building")
    assert tick_commit_status() is True
    row = CommitStatus.objects.get(execution=execution)
    assert "RuntimeError: provider module bug" in row.last_error and row.attempts == 1 and not row.done
