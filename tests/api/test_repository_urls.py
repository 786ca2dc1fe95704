"""Repository URLs with credentials in them are refused: API 400 and `pipeline run` (issue 8, point 5)."""
from __future__ import annotations

import pytest

from devops.models import Pipeline
from tests.conftest import pipeline_cmd

REFUSED = [
    "https://alice:PLANTED-tok-91@github.com/acme/app.git",
    "https://PLANTED-tok-91@github.com/acme/app.git",
    "http://x-access-token:PLANTED-tok-91@git.example:8080/acme/app",
    "ssh://git:PLANTED-tok-91@github.com/acme/app.git",
    "https://gitlab.example/acme/app.git?private_token=PLANTED-tok-91",
    "https://git.example/acme/app.git?ref=main&Access_Token=PLANTED-tok-91",
]
ALLOWED = [
    "git@github.com:acme/app.git",
    "ssh://git@github.com/acme/app.git",
    "https://github.com/acme/app.git",
    "https://git.example/acme/app.git?ref=main",
]


@pytest.mark.parametrize("url", REFUSED)
def test_api_refuses_credentials_in_the_url(world, client_as, url):
    response = client_as("alice").post(f"/api/v1/projects/{world['project'].id}/pipelines/",
                                       {"spec": {"repositoryUrl": url}}, format="json")
    assert response.status_code == 400
    message = response.json()["spec"]["repositoryUrl"][0]
    assert "store a source code credential" in message and "PLANTED" not in response.content.decode()
    assert not Pipeline.objects.filter(repository_url=url).exists()
    # A PATCH of an existing pipeline too.
    response = client_as("alice").patch(f"/api/v1/projects/{world['project'].id}/pipelines/p-app01/",
                                        {"spec": {"repositoryUrl": url}}, format="json")
    assert response.status_code == 400 and "repositoryUrl" in response.json()["spec"]


@pytest.mark.parametrize("url", ALLOWED)
def test_api_accepts_urls_without_secrets(world, client_as, url):
    response = client_as("alice").post(f"/api/v1/projects/{world['project'].id}/pipelines/",
                                       {"spec": {"repositoryUrl": url}}, format="json")
    assert response.status_code == 201, response.content


def test_pipeline_run_refuses_credentials_in_the_url(db, tmp_path, settings):
    settings.DATA_DIR = tmp_path
    code, out, err = pipeline_cmd("run", REFUSED[0], "--detach")
    assert code == 3 and "store a source code credential" in err and "PLANTED" not in out + err
    assert not Pipeline.objects.exists()
