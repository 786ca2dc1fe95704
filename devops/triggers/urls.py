"""Routes of the triggers, included at the top of devops/urls.py (full paths here).

`api/v1/hooks/...` are the provider webhooks and image-push receivers (in
the OpenAPI schema); the badge is a public page, outside the API.
"""
from __future__ import annotations

from django.urls import path

from devops.triggers.badge import badge
from devops.triggers.images import ImageWebhookView
from devops.triggers.receive import WebhookView

urlpatterns = [
    path("api/v1/hooks/<str:provider>/<str:pipeline>", WebhookView.as_view(), name="hook"),
    path("api/v1/hooks/image/<str:image_type>/<str:pipeline>/<str:token>", ImageWebhookView.as_view(),
         name="image-hook"),
    path("p/<str:project>/pipelines/<str:pipeline>/badge.svg", badge, name="pipeline-badge"),
]
