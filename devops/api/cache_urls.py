"""Routes of the cache package (included under /api/v1/)."""
from __future__ import annotations

from django.urls import path

from devops.api import views_caches as views
from devops.api.views_registry_token import registry_token
from devops.triggers import registry_events as notifications

urlpatterns = [
    path("projects/<str:project>/caches", views.caches, name="caches"),
    path("projects/<str:project>/caches/<str:pipeline>", views.pipeline_caches, name="pipeline-caches"),
    path("projects/<str:project>/caches/<str:pipeline>/<str:key>", views.cache, name="cache"),
    path("projects/<str:project>/registrycredentials", views.registry_credentials,
         name="registry-credentials"),
    path("projects/<str:project>/registrycredentials/<int:pk>", views.registry_credential,
         name="registry-credential"),
    path("registry/notifications", notifications.registry_notifications, name="registry-notifications"),
    path("registry/token", registry_token, name="registry-token"),
]
