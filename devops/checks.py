"""System checks for misconfiguration, with stable ids (slipway.E00x / W00x)."""
from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register


@register()
def check_log_store(app_configs, **kwargs):
    url = settings.SLIPWAY_LOG_STORE
    if not (url.startswith("file://") or url.startswith("s3://")):
        return [
            Error(
                f"SLIPWAY_LOG_STORE={url!r} must start with file:// or s3://",
                id="slipway.E001",
            )
        ]
    return []
