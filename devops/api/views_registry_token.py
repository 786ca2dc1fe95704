"""`GET /api/v1/registry/token`: the token endpoint of the built-in registry (distribution's token auth).

docker-registry answers a request without a token with 401 and
`WWW-Authenticate: Bearer realm=<this URL>,service=slipway-registry,scope=...`;
the client (buildah, docker, skopeo) asks here with Basic auth and the
scopes it needs, and gets a JWT valid for TOKEN_TTL seconds:

    GET /api/v1/registry/token?service=slipway-registry&scope=repository:p-abcde/app:pull,push
    -> 200 {"token": "...", "access_token": "...", "expires_in": 300, "issued_at": "..."}

Who may have what is `devops.registry.tokens.grant`: a project's credential
pull (and, for trusted runs, push) of `<project id>/...` only; a pull
request's run pushes only its own `<project id>/pr/<execution>/...`. A scope that
is not granted is left out of the token, as the token spec says; the
registry then refuses the request that needed it (401 insufficient_scope).
No Basic auth, or a wrong one: 401. Not a Slipway session or API token on
purpose: registry credentials are not users.
"""
from __future__ import annotations

import base64
import binascii
import logging

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from devops.registry import server, tokens

log = logging.getLogger(__name__)


def _basic(request: HttpRequest) -> tuple[str, str] | None:
    kind, _, value = request.headers.get("Authorization", "").partition(" ")
    if kind.lower() != "basic" or not value:
        return None
    try:
        username, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (username, password) if sep else None


def _unauthorized(detail: str) -> JsonResponse:
    response = JsonResponse({"detail": detail}, status=401)
    response["WWW-Authenticate"] = 'Basic realm="slipway-registry"'
    return response


@csrf_exempt
@require_GET
def registry_token(request: HttpRequest) -> JsonResponse:
    service = request.GET.get("service", tokens.SERVICE)
    if service != tokens.SERVICE:
        return JsonResponse({"service": [f"this endpoint issues tokens for {tokens.SERVICE!r} only"]}, status=400)
    try:
        requested = tokens.parse_scopes(request.GET.getlist("scope"))
    except tokens.ScopeError as e:
        return JsonResponse({"scope": [str(e)]}, status=400)
    creds = _basic(request)
    if creds is None:
        return _unauthorized("Basic auth with a registry credential required")
    state = server.load_state(settings.DATA_DIR)
    account = tokens.authenticate(state, *creds)
    if account is None:
        log.info("registry token refused for %r: bad credentials", creds[0][:100])
        return _unauthorized("bad registry credentials")
    answer = tokens.issue(server.registry_dir(settings.DATA_DIR), account, requested)
    log.debug("registry token for %s: %s", account.username, request.GET.getlist("scope"))
    return JsonResponse(answer)
