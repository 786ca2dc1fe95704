"""Secret values and tokens never leave: not in any API response, not in any export."""
from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from devops.api import crd
from devops.models import Pipeline, Secret
from tests.api.conftest import PLANTED, assert_no_planted
from tests.api.test_permissions import ENDPOINTS


@pytest.mark.parametrize("method,url,body", [(m, u, b) for m, u, b, _ in ENDPOINTS if m != "delete"])
def test_no_response_contains_a_planted_value(world, client_as, method, url, body):
    url = url.format(project=world["project"].id, repository=world["repository"].pk)
    response = getattr(client_as("alice"), method)(url, body, format="json")
    assert response.status_code < 300, response.content
    assert_no_planted(response.content)


def test_no_export_contains_a_planted_value(world):
    for plural in crd.KINDS:
        for extra in ([], ["--stream"], ["--project", "demo"]):
            out = io.StringIO()
            call_command("export", plural, *extra, stdout=out)
            assert out.getvalue().count("apiVersion: project.slipway.io/v3") >= 1, plural
            assert_no_planted(out.getvalue())


def test_secret_values_are_write_only(world, client_as):
    client = client_as("bob")
    base = f"/api/v1/projects/{world['project'].id}/secrets/"
    created = client.post(base, {"name": "deploy", "data": {"TOKEN": "s3cr3t-value-1", "USER": "x"}}, format="json")
    assert created.status_code == 201 and created.json()["spec"] == {"keys": ["TOKEN", "USER"]}
    assert b"s3cr3t-value-1" not in created.content
    patched = client.patch(base + "deploy/", {"data": {"EXTRA": "s3cr3t-value-2"}}, format="json")
    assert patched.json()["spec"]["keys"] == ["EXTRA", "TOKEN", "USER"]
    assert Secret.objects.get(name="deploy").data == {"TOKEN": "s3cr3t-value-1", "USER": "x", "EXTRA": "s3cr3t-value-2"}
    replaced = client.put(base + "deploy/", {"data": {"ONLY": "s3cr3t-value-3"}}, format="json")
    assert replaced.json()["spec"]["keys"] == ["ONLY"]
    listing = client.get(base)
    assert b"s3cr3t-value" not in listing.content + patched.content + replaced.content


@pytest.mark.parametrize(
    "body,field",
    [
        ({"name": "Bad Name", "data": {"k": "v"}}, "name"),
        ({"name": "ok", "data": {"bad key": "v"}}, "data"),
        ({"name": "ok", "data": {"k": 5}}, "data"),
        ({"name": "ok", "data": "nope"}, "data"),
        ({"name": "registry", "data": {"k": "v"}}, "name"),  # exists
        ({"data": {"k": "v"}}, "name"),
    ],
)
def test_bad_secret_input_names_the_field(world, client_as, body, field):
    response = client_as("bob").post(f"/api/v1/projects/{world['project'].id}/secrets/", body, format="json")
    assert response.status_code == 400 and field in response.json(), response.content


def test_image_webhook_token_is_write_only_and_survives_a_round_trip(world, client_as):
    client = client_as("bob")
    pipeline_url = f"/api/v1/projects/{world['project'].id}/pipelines/p-app01/"
    read = client.get(pipeline_url).json()
    # A client sends back what it read (no token): the stored token stays.
    response = client.put(pipeline_url, {"spec": read["spec"]}, format="json")
    assert response.status_code == 200, response.content
    assert Pipeline.objects.get(name="p-app01").image_webhooks[0]["token"] == PLANTED["image_token"]
    spec = dict(read["spec"], imageWebHookToken=[dict(read["spec"]["imageWebHookToken"][0], token="new-tok-9")])
    response = client.put(pipeline_url, {"spec": spec}, format="json")
    assert b"new-tok-9" not in response.content
    assert Pipeline.objects.get(name="p-app01").image_webhooks[0]["token"] == "new-tok-9"


@pytest.mark.parametrize("url", sorted({u for m, u, _b, _l in ENDPOINTS if m == "get"}))
def test_browsable_api_pages_render_without_secrets(world, client_as, url):
    """What a signed-in browser sees (DRF's HTML pages, with their forms) renders and leaks nothing."""
    url = url.format(project=world["project"].id, repository=world["repository"].pk)
    response = client_as("alice").get(url, HTTP_ACCEPT="text/html")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    assert_no_planted(response.content)


def test_no_admin_page_shows_a_planted_value(world, personas, client):
    """The Django admin is for operators, but write-only values stay write-only there too."""
    from django.contrib import admin

    root = personas["alice"].__class__.objects.create_superuser("root", password="root-pw-123")
    client.force_login(root)
    pages = 0
    for model in admin.site._registry:
        if model._meta.app_label != "devops":
            continue
        base = f"/admin/devops/{model._meta.model_name}/"
        for obj in model.objects.all()[:3]:
            for page in (base, f"{base}{obj.pk}/change/"):
                response = client.get(page)
                assert response.status_code == 200, page
                assert_no_planted(response.content)
                pages += 1
    assert pages >= 10
