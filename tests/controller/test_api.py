"""POST run / rerun / stop: membership rules, CRD answers, invalid files as 400 with problems."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from devops.models import ExecutionState as S
from devops.models import Pipeline, PipelineExecution

from .conftest import make_repo


@pytest.fixture
def api_pipeline(project, data_dir, tmp_path):
    path = tmp_path / "app"
    make_repo(path, {".devops.yml": "stages:\n- name: B\n  steps:\n  - runScriptConfig: {image: a, shellScript: b}\n"})
    return Pipeline.objects.create(project=project, repository_url=str(path), default_branch="main")


def client_for(user) -> APIClient:
    c = APIClient()
    c.force_authenticate(user)
    return c


def run_url(p):
    return f"/api/v1/projects/{p.project_id}/pipelines/{p.name}/run"


@pytest.mark.parametrize("who,status", [("alice", 201), ("bob", 201), ("ronnie", 403), ("charlie", 404)])
def test_run_needs_write_level(api_pipeline, personas, who, status):
    r = client_for(personas[who]).post(run_url(api_pipeline), {"branch": "main"}, format="json")
    assert r.status_code == status, r.content
    if status == 201:
        body = r.json()
        assert body["kind"] == "PipelineExecution" and body["status"]["executionState"] == S.WAITING
        assert body["spec"]["branch"] == "main" and body["spec"]["triggerUserName"] == who
    else:
        assert not PipelineExecution.objects.exists()


def test_anonymous_is_refused(api_pipeline):
    assert APIClient().post(run_url(api_pipeline), {}, format="json").status_code in (401, 403)


def test_run_with_temporary_config_and_invalid_config(api_pipeline, personas):
    c = client_for(personas["bob"])
    r = c.post(run_url(api_pipeline), {"config": "stages:\n- name: T\n  steps:\n  - runScriptConfig: {image: x, shellScript: y}\n"},
               format="json")
    assert r.status_code == 201 and r.json()["spec"]["temporaryConfig"] is True
    r = c.post(run_url(api_pipeline), {"config": "stages:\n- name: T\n  steps:\n  - runScriptConfig: {shellScript: [1]}\n"},
               format="json")
    assert r.status_code == 400
    problems = r.json()["problems"]
    assert problems and problems[0]["path"].startswith("stages[0].steps[0].runScriptConfig")
    assert {"line", "column", "severity", "message"} <= set(problems[0])
    assert c.post(run_url(api_pipeline), {"branch": "nope"}, format="json").status_code == 400
    assert c.post(run_url(api_pipeline), {"branch": 3}, format="json").status_code == 400
    missing = f"/api/v1/projects/{api_pipeline.project_id}/pipelines/p-zzzzz/run"
    assert c.post(missing, {}, format="json").status_code == 404


def test_stop_and_rerun(api_pipeline, personas):
    c = client_for(personas["bob"])
    name = c.post(run_url(api_pipeline), {}, format="json").json()["metadata"]["name"]
    base = f"/api/v1/projects/{api_pipeline.project_id}/executions/{name}"
    assert client_for(personas["ronnie"]).post(base + "/stop").status_code == 403
    assert client_for(personas["charlie"]).post(base + "/stop").status_code == 404
    assert c.post(base + "/rerun").status_code == 409          # still active
    r = c.post(base + "/stop")
    assert r.status_code == 200 and r.json()["status"]["executionState"] == S.ABORTED
    assert c.post(base + "/stop").status_code == 409           # already finished
    r = client_for(personas["alice"]).post(base + "/rerun")
    assert r.status_code == 201
    again = PipelineExecution.objects.get(name=r.json()["metadata"]["name"])
    assert again.rerun_of.name == name and again.run == 2
    assert c.post(f"/api/v1/projects/{api_pipeline.project_id}/executions/nope/stop").status_code == 404


def test_action_routes_schema_has_no_warnings(db):
    from django.urls import include, path
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.validation import validate_schema

    GENERATOR_STATS.reset()
    generator = SchemaGenerator(patterns=[path("api/v1/", include("devops.api.action_urls"))])
    schema = generator.get_schema(request=None, public=True)
    validate_schema(schema)
    assert not GENERATOR_STATS, (dict(GENERATOR_STATS._warn_cache), dict(GENERATOR_STATS._error_cache))
    assert sorted(schema["paths"]) == [
        "/api/v1/projects/{project}/executions/{name}/rerun",
        "/api/v1/projects/{project}/executions/{name}/stop",
        "/api/v1/projects/{project}/pipelines/{name}/run",
    ]
