"""WebSocket auth: Django session cookie, or `Authorization: Token ...` (DRF tokens).

A token header wins over the session; an unknown or inactive user's token
makes the connection anonymous (it never falls back to a cookie), so a
consumer refusing anonymous users refuses a bad token too.
"""
from __future__ import annotations

from channels.auth import AuthMiddleware
from channels.db import database_sync_to_async
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.contrib.auth.models import AnonymousUser


@database_sync_to_async
def _user_for_token(key: str):
    from rest_framework.authtoken.models import Token

    try:
        return Token.objects.select_related("user").get(key=key).user
    except Token.DoesNotExist:
        return None


class _TokenAuth(AuthMiddleware):
    async def resolve_scope(self, scope):
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if auth.lower().startswith("token "):
            user = await _user_for_token(auth[6:].strip())
            scope["user"]._wrapped = user if user is not None and user.is_active else AnonymousUser()
            return
        await super().resolve_scope(scope)


def TokenOrSessionAuthMiddleware(inner):
    return CookieMiddleware(SessionMiddleware(_TokenAuth(inner)))
