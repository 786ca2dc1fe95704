"""API fixtures: a project with one object of every kind, secrets planted in each.

`PLANTED` holds every secret value stored in the fixture (secret data,
tokens, SSH key, OAuth client secret, webhook tokens); tests assert none of
them appears in any response or export, byte for byte.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

PLANTED = {
    "secret": "PLANTED-secret-value-8c1f",
    "access_token": "PLANTED-access-token-41aa",
    "refresh_token": "PLANTED-refresh-token-77b2",
    "ssh_key": "PLANTED-ssh-key-BEGIN-d90e",
    "client_secret": "PLANTED-client-secret-5e3c",
    "webhook_token": "PLANTED-webhook-token-a1b9",
    "image_token": "PLANTED-image-token-c0ff",
}

T0 = datetime(2026, 11, 26, 9, 30, 15, 123456, tzinfo=UTC)


def add_execution(pipeline, run: int, *, state: str = "Success", branch: str = "main", stages: int = 2):
    """An execution with `stages` stages of two steps each (rows as the controller writes them)."""
    from devops.models import PipelineExecution, StageStatus, StepStatus

    execution = PipelineExecution.objects.create(
        project=pipeline.project,
        pipeline=pipeline,
        name=f"{pipeline.name}-{run}",
        run=run,
        branch=branch,
        ref=f"refs/heads/{branch}",
        commit="0123456789abcdef0123456789abcdef01234567",
        message="Fix the build\n\nLonger body.",
        author="alice",
        event="push",
        trigger_type="webhook",
        repository_url=pipeline.repository_url,
        config={"stages": [{"name": "Build", "steps": [{"runScriptConfig": {"image": "busybox", "shellScript": "make"}}]}]},
        execution_state=state,
        started=T0,
        ended=T0 + timedelta(seconds=42),
        conditions=[{"type": "Initialized", "status": "True"}],
    )
    for s in range(stages):
        StageStatus.objects.create(execution=execution, index=s, name=f"stage-{s}", state=state,
                                   started=T0, ended=T0 + timedelta(seconds=10))
        for i in range(2):
            StepStatus.objects.create(execution=execution, stage_index=s, index=i, name=f"step-{s}-{i}",
                                      state=state, started=T0, ended=T0 + timedelta(seconds=5), exit_code=0)
    return execution


@pytest.fixture
def world(project, personas):
    """`project` (alice owner, bob member, ronnie read-only) holding one object of every kind."""
    from devops.models import (
        Pipeline,
        Secret,
        SourceCodeCredential,
        SourceCodeProviderConfig,
        SourceCodeRepository,
    )

    credential = SourceCodeCredential.objects.create(
        project=project, name="alice-github", user=personas["alice"], source_code_type="github",
        login_name="alice-gh", display_name="Alice A.", avatar_url="https://avatars.example/alice.png",
        access_token=PLANTED["access_token"], refresh_token=PLANTED["refresh_token"],
        ssh_private_key=PLANTED["ssh_key"],
    )
    SourceCodeProviderConfig.objects.create(
        project=project, type="github", enabled=True, client_id="cid-123", client_secret=PLANTED["client_secret"]
    )
    repo = SourceCodeRepository.objects.create(
        project=project, credential=credential, source_code_type="github",
        url="https://github.com/acme/app.git", default_branch="main", language="Python",
        permissions={"pull": True, "push": True, "admin": False},
    )
    pipeline = Pipeline.objects.create(
        project=project, name="p-app01", display_name="app", repository_url="https://github.com/acme/app.git",
        credential=credential, webhook_id="hook-17", webhook_token=PLANTED["webhook_token"],
        image_webhooks=[{"branches": ["main"], "comment": "base", "imageType": "harbor",
                         "token": PLANTED["image_token"], "triggerImage": "acme/base:latest"}],
        next_run=3, last_run_state="Failed", last_execution_id="p-app01-2", last_started=T0,
    )
    repo.pipeline = pipeline  # enabled: every member sees it (an unused listing is alice's alone)
    repo.save(update_fields=["pipeline"])
    secret = Secret.objects.create(project=project, name="registry", data={"password": PLANTED["secret"]})
    executions = [add_execution(pipeline, 1), add_execution(pipeline, 2, state="Failed", branch="dev")]
    return {"project": project, "pipeline": pipeline, "credential": credential, "repository": repo,
            "secret": secret, "executions": executions}


@pytest.fixture
def client_as(personas):
    """`client_as("bob")` — an API client authenticated as a persona; None = anonymous."""

    def make(persona: str | None) -> APIClient:
        client = APIClient()
        if persona is not None:
            client.force_authenticate(personas[persona])
        return client

    return make


def assert_no_planted(raw: bytes | str) -> None:
    text = raw.decode() if isinstance(raw, bytes) else raw
    for what, value in PLANTED.items():
        assert value not in text, f"{what} leaked"
