"""A provider listing is its connecting user's view of the provider (private repositories of other
organisations included): the API shows other members what the page shows them, no more."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from devops.models import Pipeline, SourceCodeRepository
from tests.scm.conftest import make_credential

pytestmark = pytest.mark.django_db


def _names(user, project) -> set[str]:
    client = APIClient()
    client.force_authenticate(user)
    resp = client.get(f"/api/v1/projects/{project.id}/repositories/")
    assert resp.status_code == 200, resp.content[:300]
    body = resp.json()
    items = next(v for v in body.values() if isinstance(v, list)) if isinstance(body, dict) else body
    return {item["metadata"]["name"] for item in items}


def test_other_members_see_only_repositories_with_a_pipeline(personas, project, github_config):
    cred = make_credential(project, "github", user=personas["bob"])
    pipe = Pipeline.objects.create(project=project, repository_url="https://github.com/org/used.git")
    for name in ("acme-secret/private-plans", "org/used"):
        SourceCodeRepository.objects.create(project=project, credential=cred, source_code_type="github",
                                            url=f"https://github.com/{name}.git", full_name=name, external_id=name,
                                            pipeline=pipe if name == "org/used" else None)
    bob, ronnie = _names(personas["bob"], project), _names(personas["ronnie"], project)
    assert len(bob) == 2
    assert len(ronnie) == 1
    client = APIClient()
    client.force_authenticate(personas["ronnie"])
    hidden = SourceCodeRepository.objects.get(full_name="acme-secret/private-plans")
    assert client.get(f"/api/v1/projects/{project.id}/repositories/{hidden.pk}/").status_code == 404
    assert "acme-secret" not in client.get(f"/api/v1/projects/{project.id}/repositories/").content.decode()
