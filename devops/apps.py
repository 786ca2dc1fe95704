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

        # Provider accounts: the connect's token becomes an encrypted credential (devops/accounts.py);
        # a deleted pipeline's provider webhook is deleted after the commit (controller/scmcreds.py).
        from allauth.socialaccount.signals import social_account_added, social_account_updated
        from django.db.models.signals import pre_delete

        from devops.accounts import capture_token
        from devops.controller.scmcreds import delete_hook_of_pipeline
        from devops.models import Pipeline

        social_account_added.connect(capture_token, dispatch_uid="slipway.scm-token-added")
        social_account_updated.connect(capture_token, dispatch_uid="slipway.scm-token-updated")
        pre_delete.connect(delete_hook_of_pipeline, sender=Pipeline, dispatch_uid="slipway.scm-hook-delete")

        from devops.web import live

        live.connect()  # execution_changed -> the browsers' live status, from every process
