"""Account pages beside allauth's: API tokens for the CLI and the API (DRF's Token, one per user)."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST
from rest_framework.authtoken.models import Token


@login_required
def tokens(request: HttpRequest) -> TemplateResponse:
    """The user's token: when it was made, never its key (shown once, right after creation)."""
    token = Token.objects.filter(user=request.user).first()
    new_key = request.session.pop("new_token_key", None)
    return TemplateResponse(request, "web/tokens.html", {"token": token, "new_key": new_key})


@login_required
@require_POST
def token_create(request: HttpRequest) -> HttpResponseRedirect:
    """A new token (replacing the old one: DRF keeps one per user); its key is shown once."""
    Token.objects.filter(user=request.user).delete()
    token = Token.objects.create(user=request.user)
    # Through the session, not the URL: a key in a URL ends up in logs and history.
    request.session["new_token_key"] = token.key
    return HttpResponseRedirect(reverse("web:tokens"))


@login_required
@require_POST
def token_revoke(request: HttpRequest) -> HttpResponseRedirect:
    deleted, _ = Token.objects.filter(user=request.user).delete()
    messages.success(request, "Token revoked." if deleted else "There was no token.")
    return HttpResponseRedirect(reverse("web:tokens"))
