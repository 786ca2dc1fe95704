"""A credential or secret stored under an older SLIPWAY_ENCRYPTION_KEY is one bad row:
lists, exports and deletes still work for the rest (and for it); using its value raises."""
from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import override_settings

from devops.controller.spec import build_spec
from devops.models import Pipeline, PipelineExecution, Secret, SourceCodeCredential


@pytest.fixture
def old_rows(world):
    project = world["project"]
    with override_settings(ENCRYPTION_KEY="the-key-before-the-change"):
        cred = SourceCodeCredential.objects.create(project=project, name="old", access_token="t0ken-old")
        secret = Secret.objects.create(project=project, name="old-secret", data={"K": "v4lue-old"})
    Secret.objects.create(project=project, name="fresh", data={"K": "v4lue-new"})
    return cred, secret


def test_lists_and_exports_survive_an_undecryptable_row(world, client_as, old_rows):
    base = f"/api/v1/projects/{world['project'].id}"
    secrets = client_as("alice").get(f"{base}/secrets/")
    assert secrets.status_code == 200, secrets.content
    by_name = {s["metadata"]["name"]: s for s in secrets.json()["results"]}
    assert by_name["fresh"]["spec"]["keys"] == ["K"]
    assert by_name["old-secret"]["spec"]["keys"] == []
    assert "cannot decrypt" in by_name["old-secret"]["status"]["error"]
    creds = client_as("alice").get(f"{base}/credentials/")
    assert creds.status_code == 200 and "old" in creds.content.decode()
    for kind in ("secrets", "sourcecodecredentials"):
        out = io.StringIO()
        call_command("export", kind, stdout=out)
        assert "old" in out.getvalue() and "t0ken-old" not in out.getvalue()
    # The owner can remove the bad row (it 500'd before, so it could not be deleted).
    assert client_as("alice").delete(f"{base}/secrets/old-secret/").status_code == 204


def test_using_the_value_still_fails_and_saving_keeps_the_ciphertext(world, old_rows):
    cred, _secret = old_rows
    row = SourceCodeCredential.objects.get(pk=cred.pk)
    with pytest.raises(ValueError, match="cannot decrypt a stored credential"):
        bool(row.access_token)
    row.display_name = "renamed"
    row.save()  # e.g. a last-used stamp: the token must not be lost or re-encrypted as garbage
    with override_settings(ENCRYPTION_KEY="the-key-before-the-change"):
        assert SourceCodeCredential.objects.get(pk=cred.pk).access_token == "t0ken-old"
    pipeline = Pipeline.objects.create(project=world["project"], repository_url="/nonexistent/r",
                                       default_branch="main", credential=row)
    execution = PipelineExecution.objects.create(
        pipeline=pipeline, project=world["project"], run=1, config={"stages": []},
        branch="main", commit="0" * 40)
    with pytest.raises(ValueError, match="cannot decrypt a stored credential"):
        build_spec(execution)
