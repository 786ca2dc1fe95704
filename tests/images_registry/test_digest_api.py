"""The pushed digest of a publishImageConfig step is shown on that step in the API."""
from __future__ import annotations

from rest_framework.test import APIClient

DIGEST = "sha256:" + "ab" * 32


def test_execution_status_shows_the_pushed_digest_on_the_publish_step(project, personas):
    from devops.models import Pipeline, PipelineExecution, StageStatus, StepStatus

    pipeline = Pipeline.objects.create(project=project, repository_url="https://example.invalid/r.git")
    ex = PipelineExecution.objects.create(project=project, pipeline=pipeline, name=f"{pipeline.name}-1",
                                          run=1, execution_state="Success")
    StageStatus.objects.create(execution=ex, index=0, name="Build", state="Success")
    StepStatus.objects.create(execution=ex, stage_index=0, index=0, name="publish", state="Success",
                              exit_code=0, image_digest=DIGEST)
    StepStatus.objects.create(execution=ex, stage_index=0, index=1, name="script", state="Success", exit_code=0)
    client = APIClient()
    client.force_authenticate(personas["ronnie"])                      # read-only members see it
    resp = client.get(f"/api/v1/projects/{project.id}/executions/{ex.name}/")
    assert resp.status_code == 200, resp.content
    publish, script = resp.json()["status"]["stages"][0]["steps"]
    assert publish["imageDigest"] == DIGEST
    assert "imageDigest" not in script                                 # only steps that pushed an image
