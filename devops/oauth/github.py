"""GitHub with a per-app host (GitHub Enterprise Server).

allauth's GitHub adapter reads its URLs once, from settings; Slipway's apps
are per project, each with its own `hostname`. This adapter computes them
from the app chosen for the request (`SocialApp.settings["hostname"]`), and
devops/oauth/urls.py routes allauth's own GitHub paths to it.
"""
from __future__ import annotations

from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.providers.github.views import GitHubOAuth2Adapter
from allauth.socialaccount.providers.oauth2.views import OAuth2CallbackView, OAuth2LoginView


class HostGitHubAdapter(GitHubOAuth2Adapter):
    def _host(self) -> str:
        app = get_adapter(self.request).get_app(self.request, provider=self.provider_id)
        return (app.settings or {}).get("hostname", "")

    @property
    def web_url(self) -> str:  # type: ignore[override]
        host = self._host()
        return f"https://{host}" if host else "https://github.com"

    @property
    def api_url(self) -> str:  # type: ignore[override]
        host = self._host()
        return f"https://{host}/api/v3" if host else "https://api.github.com"

    @property
    def access_token_url(self) -> str:  # type: ignore[override]
        return f"{self.web_url}/login/oauth/access_token"

    @property
    def authorize_url(self) -> str:  # type: ignore[override]
        return f"{self.web_url}/login/oauth/authorize"

    @property
    def profile_url(self) -> str:  # type: ignore[override]
        return f"{self.api_url}/user"

    @property
    def emails_url(self) -> str:  # type: ignore[override]
        return f"{self.api_url}/user/emails"


oauth2_login = OAuth2LoginView.adapter_view(HostGitHubAdapter)
oauth2_callback = OAuth2CallbackView.adapter_view(HostGitHubAdapter)
