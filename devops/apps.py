from __future__ import annotations

from django.apps import AppConfig


class DevopsConfig(AppConfig):
    name = "devops"
    label = "devops"
    verbose_name = "Slipway"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from devops import checks  # noqa: F401  (registers system checks)
        from devops.web import live

        live.connect()  # execution_changed -> the browsers' live status, from every process
