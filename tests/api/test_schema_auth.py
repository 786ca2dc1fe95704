"""OpenAPI schema and docs, token and session authentication, migrations."""
from __future__ import annotations

import io
import re

import yaml
from django.core.management import call_command
from rest_framework.test import APIClient


def test_openapi_schema_validates(db, tmp_path):
    """The whole /api/schema/ is valid OpenAPI 3 (other modules' views included)."""
    target = tmp_path / "schema.yml"
    # --fail-on-warn: every view of every package documents its responses.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    schema = yaml.safe_load(target.read_text())
    assert schema["openapi"].startswith("3.")
    paths = set(schema["paths"])
    for expected in ("/api/v1/projects/", "/api/v1/projects/{project}/pipelines/{name}/",
                     "/api/v1/projects/{project}/pipelines/{pipeline}/executions/", "/api/v1/lint",
                     "/api/v1/projects/{project}/secrets/{name}/", "/api/v1/pipelinefiles/edit",
                     "/api/v1/projects/{project}/pipelines/{name}/run",
                     "/api/v1/projects/{project}/executions/{name}/stages/{stage}/steps/{step}/log"):
        assert expected in paths
    lint_body = schema["paths"]["/api/v1/lint"]["post"]["requestBody"]["content"]
    assert {"text/plain", "application/x-yaml", "application/json"} <= set(lint_body)


def test_routes_schema_has_no_warnings(db):
    """`spectacular --fail-on-warn` for devops.api.routes (this area's views)."""
    from django.urls import include, path
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.validation import validate_schema

    GENERATOR_STATS.reset()
    generator = SchemaGenerator(patterns=[path("api/v1/", include("devops.api.routes"))])
    schema = generator.get_schema(request=None, public=True)
    validate_schema(schema)
    assert not GENERATOR_STATS, (dict(GENERATOR_STATS._warn_cache), dict(GENERATOR_STATS._error_cache))
    assert len(schema["paths"]) == 20


def test_schema_and_docs_are_served(db, client):
    assert client.get("/api/schema/").status_code == 200
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


def test_token_auth_with_drf_create_token(project, personas):
    out = io.StringIO()
    call_command("drf_create_token", "ronnie", stdout=out)
    token = re.search(r"token (\w+) for user", out.getvalue()).group(1)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = client.get(f"/api/v1/projects/{project.id}/pipelines/")
    assert response.status_code == 200 and response.json()["count"] == 0
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    refused = client.get(f"/api/v1/projects/{project.id}/")
    assert refused.status_code in (401, 403) and b"Invalid token" in refused.content


def test_session_auth_needs_csrf_for_writes(project, personas, settings):
    personas["bob"].set_password("bob-pw")
    personas["bob"].save()
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="bob", password="bob-pw")
    assert client.get(f"/api/v1/projects/{project.id}/settings/").status_code == 200
    body = {"name": "s", "data": {"k": "v"}}
    response = client.post(f"/api/v1/projects/{project.id}/secrets/", body, format="json")
    assert response.status_code == 403 and b"CSRF" in response.content


def test_anonymous_is_refused(project):
    assert APIClient().get(f"/api/v1/projects/{project.id}/").status_code in (401, 403)
    assert APIClient().get("/api/v1/projects/").status_code in (401, 403)


def test_documented_crd_fields_match_the_rendering(world):
    """Each kind's schema (devops/api/schema.py) lists exactly the keys crd.py renders."""
    from devops.api import crd, schema
    from devops.models import ProjectMember

    rendered = {plural: crd.objects(plural, world["project"].id)[0] for plural in crd.KINDS}
    rendered["members"] = crd.member(ProjectMember.objects.select_related("user").first())
    assert {r["kind"] for r in rendered.values()} == set(schema.BY_KIND)
    for item in rendered.values():
        documented = schema.BY_KIND[item["kind"]]()
        assert set(item) == set(documented.fields), item["kind"]
        for part in ("spec", "status"):
            if part in item:
                assert set(item[part]) == set(documented.fields[part].fields), (item["kind"], part)
    stage = rendered["pipelineexecutions"]["status"]["stages"][0]
    assert set(stage) == set(schema.StageStatusSchema().fields)
    assert set(stage["steps"][0]) == set(schema.StepStatusSchema().fields)
