"""Provider apps (owners), provider accounts and their repositories (members).

- `/p/<project>/settings/providers/` and `.../<type>`: the project's OAuth app
  for a provider type: the callback URL to copy, the scopes and why, client
  id / secret (write-only: the secret is never rendered back, stored
  encrypted), hostname for GitHub Enterprise / self-hosted GitLab / Bitbucket
  Server. Backed by an allauth SocialApp (devops/accounts.py picks it).
- `/p/<project>/repositories/`: connected accounts (a revoked one says so,
  with "reconnect"), the repositories listed from the provider (searchable,
  refreshable, paged), "enable" (pipeline + webhook) and each webhook's health.

A listing is the connecting user's view of the provider (private repositories
of other organisations included), so it is theirs: other members see only the
repositories that have a pipeline here, and only the account's owner may
refresh it or enable a repository with it.
"""
from __future__ import annotations

import logging

from allauth.socialaccount.adapter import get_adapter as get_social_adapter
from allauth.socialaccount.models import SocialApp
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.sites.models import Site
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import OuterRef, Q, Subquery
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from devops.accounts import SESSION_APP
from devops.controller import scmcreds
from devops.kinds import KindNotFound, KindUnavailable
from devops.models import (
    SourceCodeCredential,
    SourceCodeProviderConfig,
    SourceCodeRepository,
    WebhookDelivery,
)
from devops.scm import http
from devops.scm.providers import PROVIDERS, oauth_provider_id
from devops.web.access import project_for

log = logging.getLogger(__name__)

HOSTNAME_HELP = {
    "github": "GitHub Enterprise Server only (e.g. github.example.com); empty = github.com",
    "gitlab": "self-hosted GitLab only (e.g. gitlab.example.com); empty = gitlab.com",
    "bitbucketserver": "your Bitbucket Server / Data Center host (required), e.g. bitbucket.example.com",
}
REPOS_PER_PAGE = 100


def _oauth_kind(kind_name: str):
    try:
        kind = PROVIDERS.get(kind_name)
        cls = PROVIDERS.load(kind_name)
    except (KindNotFound, KindUnavailable):
        raise Http404("No such provider.") from None
    if not kind.oauth_app:
        raise Http404("No such provider.")
    return kind, cls


def oauth_kinds():
    return [k for k in PROVIDERS if k.oauth_app]


class ProviderAppForm(forms.Form):
    client_id = forms.CharField(label="Client ID (key)", max_length=255)
    client_secret = forms.CharField(label="Client secret", required=False, max_length=1024, strip=True,
                                    widget=forms.PasswordInput(render_value=False),
                                    help_text="write-only: stored encrypted, never shown; empty keeps the current one")
    hostname = forms.CharField(label="Hostname", required=False, max_length=255)
    enabled = forms.BooleanField(label="Enabled", required=False, initial=True)

    def __init__(self, *args, kind_name: str = "", has_secret: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind_name, self.has_secret = kind_name, has_secret
        self.fields["hostname"].help_text = HOSTNAME_HELP.get(kind_name, "")
        if kind_name == "bitbucketcloud":
            del self.fields["hostname"]

    def clean_hostname(self) -> str:
        host = (self.cleaned_data.get("hostname") or "").strip().lower()
        if host.startswith(("http://", "https://")):
            host = host.split("://", 1)[1]
        host = host.rstrip("/")
        if host and not all(part and all(c.isalnum() or c in "-:" for c in part) for part in host.split(".")):
            raise forms.ValidationError("a host name (and port), like git.example.com or git.example.com:8443")
        if self.kind_name == "bitbucketserver" and not host:
            raise forms.ValidationError("Bitbucket Server needs its host name")
        problem = http.host_problem(host, allow_private=settings.SLIPWAY_SCM_ALLOW_PRIVATE)
        if problem:
            raise forms.ValidationError(problem)
        return host

    def clean(self):
        data = super().clean()
        if not data.get("client_secret") and not self.has_secret:
            self.add_error("client_secret", "the client secret is needed (it is shown once at the provider)")
        return data


@login_required
def providers(request: HttpRequest, project: str) -> TemplateResponse:
    proj = project_for(request, project, "owner")
    configs = {c.type: c for c in SourceCodeProviderConfig.objects.filter(project=proj)}
    rows = [{"kind": k, "config": configs.get(k.name)} for k in oauth_kinds()]
    return TemplateResponse(request, "web/scm_providers.html", {"project": proj, "rows": rows, "tab": "settings"})


@login_required
def provider(request: HttpRequest, project: str, kind_name: str) -> TemplateResponse | HttpResponseRedirect:
    proj = project_for(request, project, "owner")
    kind, cls = _oauth_kind(kind_name)
    config = SourceCodeProviderConfig.objects.filter(project=proj, type=kind.name).first()
    initial = {"client_id": config.client_id, "hostname": config.hostname, "enabled": config.enabled} if config else {}
    form = ProviderAppForm(request.POST or None, initial=initial, kind_name=kind.name,
                           has_secret=bool(config and config.client_secret))
    if request.method == "POST" and form.is_valid():
        save_app(proj, kind, config, form.cleaned_data)
        messages.success(request, f"{kind.label} app saved.")
        return HttpResponseRedirect(reverse("web:scm-provider", args=[proj.id, kind.name]))
    context = {"project": proj, "kind": kind, "config": config, "form": form, "tab": "settings",
               "callback_url": scmcreds.callback_url(kind.name), "scopes": cls.scopes}
    return TemplateResponse(request, "web/scm_provider.html", context, status=400 if form.errors else 200)


@transaction.atomic
def save_app(proj, kind, config: SourceCodeProviderConfig | None, data: dict) -> SourceCodeProviderConfig:
    """The config row and its SocialApp: hidden (no login button), secret kept only on the config (encrypted)."""
    config = config or SourceCodeProviderConfig(project=proj, type=kind.name)
    config.client_id = data["client_id"].strip()
    if data.get("client_secret"):
        config.client_secret = data["client_secret"]
    config.hostname = data.get("hostname", "") or ""
    config.enabled = bool(data.get("enabled"))
    app = config.social_app or SocialApp(provider=oauth_provider_id(kind))
    app.name = f"{proj.id} {kind.label}"[:40]
    app.client_id, app.secret = config.client_id, ""
    app.settings = {"hidden": True, "hostname": config.hostname,
                    **({"gitlab_url": f"https://{config.hostname}"} if kind.name == "gitlab" and config.hostname
                       else {})}
    app.save()
    app.sites.add(Site.objects.get_current())
    config.social_app = app
    config.redirect_url = scmcreds.callback_url(kind.name)
    config.save()
    return config


@login_required
@require_POST
def connect(request: HttpRequest, project: str, kind_name: str) -> HttpResponse:
    """allauth's "connect" (never a sign-up) with this project's app; back to the repositories page."""
    proj = project_for(request, project, "write")
    kind, cls = _oauth_kind(kind_name)
    config = SourceCodeProviderConfig.objects.filter(project=proj, type=kind.name, enabled=True).first()
    if config is None or config.social_app_id is None:
        messages.error(request, f"No {kind.label} app is enabled in this project: an owner sets one up first.")
        return HttpResponseRedirect(reverse("web:scm-repositories", args=[proj.id]))
    problem = http.host_problem(config.hostname, allow_private=settings.SLIPWAY_SCM_ALLOW_PRIVATE)
    if problem:  # an app saved before the rule, or a name that now resolves elsewhere
        messages.error(request, f"{kind.label} app: {problem}")
        return HttpResponseRedirect(reverse("web:scm-repositories", args=[proj.id]))
    request.session[SESSION_APP] = config.social_app_id
    provider_obj = get_social_adapter(request).get_provider(request, oauth_provider_id(kind))
    return provider_obj.redirect(request, "connect", next_url=reverse("web:scm-repositories", args=[proj.id]),
                                 scope=[s for s, _why in cls.scopes])


def _repositories(proj, q: str, user):
    last = WebhookDelivery.objects.filter(pipeline_id=OuterRef("pipeline_id")).order_by("-received_at", "-id")
    qs = (SourceCodeRepository.objects.filter(project=proj).select_related("credential", "pipeline")
          .annotate(last_delivery=Subquery(last.values("received_at")[:1]),
                    last_signature_ok=Subquery(last.values("signature_ok")[:1]),
                    last_outcome=Subquery(last.values("outcome")[:1]))
          .filter(Q(credential__user=user) | Q(pipeline__isnull=False)))
    if q:
        qs = qs.filter(Q(full_name__icontains=q) | Q(url__icontains=q))
    return qs.order_by("full_name", "pk")


@login_required
def repositories(request: HttpRequest, project: str) -> TemplateResponse:
    proj = project_for(request, project, "read")
    q = request.GET.get("q", "").strip()[:200]
    creds = SourceCodeCredential.objects.filter(project=proj).exclude(source_code_type="git").order_by("name")
    enabled = {c.type for c in SourceCodeProviderConfig.objects.filter(project=proj, enabled=True)}
    page = Paginator(_repositories(proj, q, request.user), REPOS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"project": proj, "credentials": creds, "repositories": page, "q": q,
               "connectable": [k for k in oauth_kinds() if k.name in enabled], "tab": "repositories"}
    return TemplateResponse(request, "web/scm_repositories.html", context)


def _provider_failure(request, cred: SourceCodeCredential, exc: Exception) -> None:
    if isinstance(exc, http.Unauthorized):
        messages.error(request, f"{cred.get_source_code_type_display()} refused the token of {cred.login_name}: "
                                "reconnect the account.")
    elif isinstance(exc, http.Transient):
        messages.error(request, f"{cred.get_source_code_type_display()} is not answering; try again later.")
    else:
        messages.error(request, f"{cred.get_source_code_type_display()}: {exc}")


@login_required
@require_POST
def repositories_refresh(request: HttpRequest, project: str, credential: int) -> HttpResponseRedirect:
    proj = project_for(request, project, "write")
    cred = get_object_or_404(SourceCodeCredential, project=proj, pk=credential)
    _own(request, cred)
    try:
        n = scmcreds.refresh_repositories(cred)
    except (http.ProviderError, scmcreds.NotConnected) as exc:
        _provider_failure(request, cred, exc)
    else:
        messages.success(request, f"{n} repositories listed from {cred.login_name}'s account.")
    return HttpResponseRedirect(reverse("web:scm-repositories", args=[proj.id]))


@login_required
@require_POST
def repository_enable(request: HttpRequest, project: str, pk: int) -> HttpResponseRedirect:
    """A pipeline for the repository and the provider webhook pointed at Slipway."""
    proj = project_for(request, project, "write")
    row = get_object_or_404(SourceCodeRepository.objects.select_related("credential"), project=proj, pk=pk)
    if row.pipeline_id:
        return HttpResponseRedirect(reverse("web:pipeline", args=[proj.id, row.pipeline.name]))
    if row.credential is None:
        raise Http404("No such repository.")
    _own(request, row.credential)
    try:
        pipeline = scmcreds.enable(row)
    except (http.ProviderError, scmcreds.NotConnected) as exc:
        _provider_failure(request, row.credential, exc)
        SourceCodeRepository.objects.filter(pk=row.pk).update(hook_error=str(exc)[:500])
        return HttpResponseRedirect(reverse("web:scm-repositories", args=[proj.id]))
    messages.success(request, f"Pipeline {pipeline.display_name} added, with a webhook at the provider.")
    return HttpResponseRedirect(reverse("web:pipeline", args=[proj.id, pipeline.name]))


def _own(request: HttpRequest, cred: SourceCodeCredential) -> None:
    if cred.user_id != request.user.pk:
        raise PermissionDenied(f"Only {cred.user or 'its owner'} may use the account {cred.login_name}.")


def repositories_for_new_pipeline(proj, user) -> list[SourceCodeRepository]:
    """The add-pipeline page's offer: the user's listed repositories without a pipeline yet."""
    return list(SourceCodeRepository.objects.filter(project=proj, pipeline__isnull=True, credential__user=user)
                .select_related("credential").order_by("full_name")[:50])
