"""Webhook tokens are encrypted at rest (issue 8, point 5): the raw SQL columns hold no token."""
from __future__ import annotations

import json

from django.db import connection

from devops.models import Pipeline
from tests.api.conftest import PLANTED


def raw_row(name: str) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT webhook_token, image_webhooks FROM devops_pipeline WHERE name = %s", [name])
        token, hooks = cursor.fetchone()
    return token, hooks if isinstance(hooks, str) else json.dumps(hooks)


def test_webhook_tokens_are_encrypted_in_the_database(world, client_as):
    token, hooks = raw_row("p-app01")
    for raw in (token, hooks):
        assert PLANTED["webhook_token"] not in raw and PLANTED["image_token"] not in raw
    assert token.startswith("fernet:v1:")
    entry = json.loads(hooks)[0]
    assert entry["token"].startswith("fernet:v1:") and entry["triggerImage"] == "acme/base:latest"
    # Python code sees the plain values.
    pipeline = Pipeline.objects.get(name="p-app01")
    assert pipeline.webhook_token == PLANTED["webhook_token"]
    assert pipeline.image_webhooks[0]["token"] == PLANTED["image_token"]

    # A token written through the API is encrypted too, and a save does not encrypt twice.
    response = client_as("alice").patch(
        f"/api/v1/projects/{world['project'].id}/pipelines/p-app01/",
        {"spec": {"imageWebHookToken": [{"imageType": "harbor", "triggerImage": "acme/new:1", "token": "NEW-tok-1",
                                         "branches": ["main"]}]}}, format="json")
    assert response.status_code == 200, response.content
    pipeline = Pipeline.objects.get(name="p-app01")
    pipeline.save()
    assert "NEW-tok-1" not in raw_row("p-app01")[1]
    assert Pipeline.objects.get(name="p-app01").image_webhooks[0]["token"] == "NEW-tok-1"


def test_the_migration_encrypts_tokens_stored_in_plain_text(world):
    """Rows from before 0003_sec: the migration's function encrypts them in place."""
    import importlib

    with connection.cursor() as cursor:
        cursor.execute("UPDATE devops_pipeline SET webhook_token = %s, image_webhooks = %s WHERE name = %s",
                       ["plain-old-token", json.dumps([{"imageType": "harbor", "triggerImage": "a/b:1",
                                                        "token": "plain-image-token"}]), "p-app01"])
    migration = importlib.import_module("devops.migrations.0003_sec")
    from django.apps import apps

    migration.encrypt_rows(apps, connection)
    token, hooks = raw_row("p-app01")
    assert "plain-old-token" not in token and "plain-image-token" not in hooks
    pipeline = Pipeline.objects.get(name="p-app01")
    assert pipeline.webhook_token == "plain-old-token"
    assert pipeline.image_webhooks[0]["token"] == "plain-image-token"
