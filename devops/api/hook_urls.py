"""/api/v1/ routes of a pipeline's webhook setup (views in devops/api/views_hooks.py).

The receivers themselves (`/api/v1/hooks/...`) are devops/triggers/urls.py's.
"""
from __future__ import annotations

from django.urls import path

from devops.api.views_hooks import pipeline_webhook, rotate_webhook_secret

P = "projects/<str:project>/pipelines/<str:name>/"

urlpatterns = [
    path(P + "webhook", pipeline_webhook, name="api-pipeline-webhook"),
    path(P + "webhook/rotate", rotate_webhook_secret, name="api-pipeline-webhook-rotate"),
]
