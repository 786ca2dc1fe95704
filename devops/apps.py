from __future__ import annotations

from django.apps import AppConfig


class DevopsConfig(AppConfig):
    name = "devops"
    label = "devops"
    verbose_name = "Slipway"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from devops import checks  # noqa: F401  (registers system checks)
        from devops.triggers.images import on_registry_push
        from devops.triggers.registry_events import image_pushed

        # The built-in registry's pushes start image-push triggers (devops/triggers/images.py).
        image_pushed.connect(on_registry_push, dispatch_uid="slipway.image-push-trigger")

        from devops.web import live

        live.connect()  # execution_changed -> the browsers' live status, from every process
