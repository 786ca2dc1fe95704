"""Routes of the triggers (included under /api/v1/ by devops/api/urls.py): provider webhooks, image pushes."""
from __future__ import annotations

from django.urls import path

from devops.triggers.receive import WebhookView

urlpatterns = [
    path("hooks/<str:provider>/<str:pipeline>", WebhookView.as_view(), name="hook"),
]
