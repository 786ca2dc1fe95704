"""The admin refuses deletes that would orphan a runner, as the API's 409 does (issue 8, point 5)."""
from __future__ import annotations

import pytest
from django.test import Client

from devops.models import Pipeline, PipelineExecution, Project
from tests.api.conftest import add_execution


@pytest.fixture
def admin_client_(personas):
    alice = personas["alice"]
    alice.is_staff = alice.is_superuser = True
    alice.save()
    client = Client()
    client.force_login(alice)
    return client


@pytest.mark.parametrize("state,abort_requested", [("Building", False), ("Aborted", True)])
def test_admin_cannot_delete_while_an_execution_runs_or_its_stop_is_pending(world, admin_client_, state,
                                                                            abort_requested):
    ex = add_execution(world["pipeline"], 3, state=state)
    PipelineExecution.objects.filter(pk=ex.pk).update(abort_requested=abort_requested)
    pipeline, project = world["pipeline"], world["project"]
    for url in (f"/admin/devops/pipeline/{pipeline.pk}/delete/", f"/admin/devops/project/{project.pk}/delete/",
                f"/admin/devops/pipelineexecution/{ex.pk}/delete/"):
        assert admin_client_.post(url, {"post": "yes"}).status_code == 403, url
    # The bulk action too (refused for the busy execution its delete would cascade to).
    response = admin_client_.post("/admin/devops/pipeline/", {"action": "delete_selected", "post": "yes",
                                                              "_selected_action": [pipeline.pk]}, follow=True)
    assert response.status_code == 403 or b"not deleted" in response.content
    assert Pipeline.objects.filter(pk=pipeline.pk).exists() and Project.objects.filter(pk=project.pk).exists()
    assert PipelineExecution.objects.filter(pk=ex.pk).exists()

    PipelineExecution.objects.filter(pk=ex.pk).update(execution_state="Aborted", abort_requested=False)
    assert admin_client_.post(f"/admin/devops/pipeline/{pipeline.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Pipeline.objects.filter(pk=pipeline.pk).exists()
