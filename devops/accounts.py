"""Who may create an account: the allauth adapter behind `SLIPWAY_SIGNUP`.

Sign-up is closed by default: a CI host runs the code of whoever can log in,
so accounts are made by an admin (`manage.py user add`, or `/admin/`) and a
project owner adds them to the project. With `SLIPWAY_SIGNUP=open` anyone may
sign up, and a new account still sees no project until an owner adds it.
Social logins follow the same rule (allauth's social adapter asks this one).
"""
from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings


def signup_open() -> bool:
    return settings.SLIPWAY_SIGNUP == "open"


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        return signup_open()


# --- Provider apps per project (devops/web/views_scm.py) -------------------------
#
# allauth finds one SocialApp per provider; Slipway has one per project and
# provider type (SourceCodeProviderConfig.social_app). The connect view puts
# the chosen app's pk in the session (SESSION_APP) before redirecting to the
# provider, and this adapter then answers only that app, for the redirect and
# for the callback alike. The apps are `hidden` (never offered on the login
# page: they connect repositories, they do not sign anyone up), and their
# client secret lives encrypted on the config row: SocialApp.secret stays
# empty and is filled in memory here.

SESSION_APP = "slipway_scm_app"
SECRET_PROFILE_KEYS = frozenset({"private_token", "access_token", "refresh_token", "token", "id_token"})


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request, sociallogin) -> bool:
        return signup_open()

    def pre_social_login(self, request, sociallogin) -> None:
        """A project's app only connects an account to the signed-in user; it never signs anyone in.

        Its host is typed by a project owner, so the server behind it may answer
        any profile: let it "log in" and an owner running a fake GitHub
        Enterprise answers another user's (public) account id and becomes them.
        """
        from allauth.core.exceptions import ImmediateHttpResponse
        from allauth.socialaccount.providers.base import AuthProcess
        from django.http import HttpResponseForbidden

        from devops.models import SourceCodeProviderConfig

        app = getattr(getattr(sociallogin, "provider", None), "app", None)
        if app is None or not app.pk or not SourceCodeProviderConfig.objects.filter(social_app=app).exists():
            return super().pre_social_login(request, sociallogin)
        if sociallogin.state.get("process") != AuthProcess.CONNECT or not request.user.is_authenticated:
            raise ImmediateHttpResponse(HttpResponseForbidden(
                "A project's provider app connects repositories to a signed-in user; it does not sign in."))
        return super().pre_social_login(request, sociallogin)

    def get_provider(self, request, provider, client_id=None):
        from django.core.exceptions import MultipleObjectsReturned, PermissionDenied

        try:
            instance = super().get_provider(request, provider, client_id=client_id)
        except MultipleObjectsReturned:
            # Several projects have an app of this provider and no connect chose one (a
            # login, or a callback without the session): a clear 403, not allauth's 500.
            raise PermissionDenied(
                f"several projects have a {provider} app: connect from a project's Repositories page") from None
        if instance.id == "github":  # the redirect too must use the app's host (GitHub Enterprise)
            from devops.oauth.github import HostGitHubAdapter

            instance.oauth2_adapter_class = HostGitHubAdapter
        return instance

    def list_apps(self, request, provider=None, client_id=None):
        apps = super().list_apps(request, provider=provider, client_id=client_id)
        chosen = request.session.get(SESSION_APP) if request is not None and hasattr(request, "session") else None
        if chosen is not None:
            picked = [a for a in apps if a.pk == chosen]
            if picked or provider:
                apps = picked
        return [_with_secret(a) for a in apps]


def _with_secret(app):
    from devops.models import SourceCodeProviderConfig

    if app.pk and not app.secret:
        config = SourceCodeProviderConfig.objects.filter(social_app=app).only("client_secret").first()
        if config is not None:
            app.secret = config.client_secret or ""
    return app


def capture_token(request, sociallogin, **kwargs) -> None:
    """allauth's social_account_added/updated: the token becomes an encrypted SourceCodeCredential.

    SOCIALACCOUNT_STORE_TOKENS is False, so allauth writes no SocialToken row;
    this is the one place the token is kept.
    """
    from devops.models import SourceCodeCredential, SourceCodeProviderConfig

    token = getattr(sociallogin, "token", None)
    chosen = request.session.get(SESSION_APP) if hasattr(request, "session") else None
    config = SourceCodeProviderConfig.objects.filter(social_app_id=chosen).first() if chosen else None
    if token is None or config is None or not request.user.is_authenticated:
        return
    data = sociallogin.account.extra_data or {}
    # The profile is stored in plaintext (SocialAccount.extra_data): no secret-looking field stays in it
    # (GitLab's older /user answers carried the user's `private_token`).
    leaked = [k for k in data if k in SECRET_PROFILE_KEYS]
    if leaked and sociallogin.account.pk:
        for k in leaked:
            data.pop(k)
        sociallogin.account.save(update_fields=["extra_data"])
    login = str(data.get("login") or data.get("username") or data.get("slug") or sociallogin.account.uid)
    html = data.get("html_url") or data.get("web_url") or ""
    if not html and isinstance(data.get("links"), dict):
        link = data["links"].get("html") or data["links"].get("self") or {}
        html = (link[0] if isinstance(link, list) and link else link).get("href", "") if link else ""
    SourceCodeCredential.objects.update_or_create(
        project=config.project, name=f"{config.type}-{login}"[:100],
        defaults={"user": request.user, "source_code_type": config.type, "login_name": login[:255],
                  "display_name": str(data.get("name") or data.get("display_name") or data.get("displayName")
                                      or login)[:255],
                  "avatar_url": str(data.get("avatar_url") or "")[:512], "html_url": str(html)[:512],
                  "access_token": token.token, "refresh_token": token.token_secret or "",
                  "expiry": token.expires_at, "revoked": False, "last_error": ""})
    request.session.pop(SESSION_APP, None)
