"""The webhook setup endpoint: owner and member see the secret and URLs; rotation; read-only sees nothing."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from devops.models import Pipeline

from .conftest import fixture_bytes, sha256_hex


@pytest.fixture
def api(personas):
    def as_(name: str) -> APIClient:
        c = APIClient()
        c.force_authenticate(personas[name])
        return c

    return as_


def test_rotate_then_a_delivery_signed_with_the_new_secret_runs(api, hook_pipeline):
    p = hook_pipeline("github/push-branch.json", webhook_token="")
    url = f"/api/v1/projects/{p.project_id}/pipelines/{p.name}/webhook"
    first = api("bob").get(url)
    assert first.status_code == 200
    assert first.json()["secret"] == ""
    assert first.json()["urls"]["github"].endswith(f"/api/v1/hooks/github/{p.name}")
    assert set(first.json()["urls"]) == {"github", "gitlab", "bitbucketcloud", "bitbucketserver", "gitea", "gogs"}
    rotated = api("alice").post(url + "/rotate")
    secret = rotated.json()["secret"]
    assert rotated.status_code == 200 and len(secret) >= 40
    assert Pipeline.objects.get(pk=p.pk).webhook_token == secret

    body = fixture_bytes("github/push-branch.json")
    hook = APIClient().post(f"/api/v1/hooks/github/{p.name}", data=body, content_type="application/json",
                            headers={"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1",
                                     "X-Hub-Signature-256": "sha256=" + sha256_hex(body, secret)})
    assert hook.status_code == 202, hook.content
    deliveries = api("bob").get(url).json()["deliveries"]
    assert [(d["provider"], d["deliveryId"], d["signatureOk"], d["outcome"]) for d in deliveries] == [
        ("github", "d-1", True, "ran")]
    again = api("alice").post(url + "/rotate").json()["secret"]
    assert again != secret


def test_read_only_and_strangers_never_see_the_secret(api, hook_pipeline):
    p = hook_pipeline()
    url = f"/api/v1/projects/{p.project_id}/pipelines/{p.name}/webhook"
    assert api("ronnie").get(url).status_code == 403
    assert api("charlie").get(url).status_code == 404
    assert APIClient().get(url).status_code in (401, 403)
    assert api("ronnie").post(url + "/rotate").status_code == 403
    assert Pipeline.objects.get(pk=p.pk).webhook_token == "It's a Secret to Everybody"


def test_polling_is_set_per_pipeline_through_the_api(api, project):
    url = f"/api/v1/projects/{project.id}/pipelines/"
    r = api("bob").post(url, {"metadata": {"name": "polled"}, "spec": {
        "repositoryUrl": "https://git.example/a.git", "pollInterval": 300, "pollBranches": ["main", "release-*"]}},
        format="json")
    assert r.status_code == 201, r.content
    assert (r.json()["spec"]["pollInterval"], r.json()["spec"]["pollBranches"]) == (300, ["main", "release-*"])
    stored = Pipeline.objects.get(name="polled")
    assert (stored.poll_interval, stored.poll_branches) == (300, ["main", "release-*"])
    bad = api("bob").patch(url + "polled/", {"spec": {"pollInterval": 5}}, format="json")
    assert bad.status_code == 400 and "pollInterval" in bad.content.decode()
    off = api("bob").patch(url + "polled/", {"spec": {"pollInterval": 0}}, format="json")
    assert off.status_code == 200 and Pipeline.objects.get(name="polled").poll_interval == 0
