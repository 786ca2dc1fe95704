"""/api/v1/ — each concern registers its own routes module here."""
from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("", include("devops.api.routes")),         # projects, members, settings, secrets, pipelines, executions, lint
    path("", include("devops.api.action_urls")),    # run / rerun / stop (controller actions)
    path("", include("devops.api.log_urls")),          # log download and paged JSON
    path("", include("devops.api.cache_urls")),         # cache list / clear
    path("", include("devops.api.hook_urls")),          # a pipeline's webhook URLs, secret, rotation
    path("", include("devops.api.notify_urls")),        # project notifiers, a run's notifications
]
