"""WebSocket auth: Django session cookie, or `Authorization: Token ...`."""
from __future__ import annotations

from channels.auth import AuthMiddleware
from channels.db import database_sync_to_async
from channels.sessions import CookieMiddleware, SessionMiddleware


@database_sync_to_async
def _user_for_token(key: str):
    from rest_framework.authtoken.models import Token

    try:
        return Token.objects.select_related("user").get(key=key).user
    except Token.DoesNotExist:
        return None


class _TokenAuth(AuthMiddleware):
    async def resolve_scope(self, scope):
        await super().resolve_scope(scope)
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if auth.lower().startswith("token "):
            user = await _user_for_token(auth[6:].strip())
            if user is not None and user.is_active:
                scope["user"]._wrapped = user


def TokenOrSessionAuthMiddleware(inner):
    return CookieMiddleware(SessionMiddleware(_TokenAuth(inner)))
