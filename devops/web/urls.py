"""The browser UI's routes (namespace "web"), mounted at the site root."""
from __future__ import annotations

from devops.web import urls_run

app_name = "web"

urlpatterns: list = [*urls_run.urlpatterns]
