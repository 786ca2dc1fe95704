"""ASGI entry point: HTTP through Django, WebSockets through Channels."""
from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "devops.settings")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from devops.controller import embedded  # noqa: E402
from devops.routing import websocket_urlpatterns  # noqa: E402
from devops.wsauth import TokenOrSessionAuthMiddleware  # noqa: E402

embedded.start()  # only with SLIPWAY_EMBEDDED_CONTROLLER=1 (README "Settings")

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            TokenOrSessionAuthMiddleware(URLRouter(websocket_urlpatterns))
        ),
    }
)
