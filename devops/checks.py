"""System checks for misconfiguration, with stable ids (slipway.E00x / W00x)."""
from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register


@register()
def check_log_store(app_configs, **kwargs):
    """SLIPWAY_LOG_STORE: E001 unknown scheme, E010 file:// without an absolute path,
    E011 malformed s3:// URL, E012 s3:// without credentials, E013 s3:// without one bucket."""
    from devops.logs.s3config import log_store_url_problems

    return [Error(msg, id=check_id) for check_id, msg in log_store_url_problems(settings.SLIPWAY_LOG_STORE)]
