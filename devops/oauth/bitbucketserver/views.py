from __future__ import annotations

from urllib.parse import quote

from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from allauth.socialaccount.providers.oauth2.views import (
    OAuth2Adapter,
    OAuth2CallbackView,
    OAuth2LoginView,
)


class BitbucketServerOAuth2Adapter(OAuth2Adapter):
    provider_id = "bitbucketserver"

    @property
    def base_url(self) -> str:
        app = get_adapter(self.request).get_app(self.request, provider=self.provider_id)
        host = (app.settings or {}).get("hostname", "")
        if not host:
            raise OAuth2Error("this Bitbucket Server app has no hostname")
        return f"https://{host}"

    @property
    def authorize_url(self) -> str:  # type: ignore[override]
        return f"{self.base_url}/rest/oauth2/latest/authorize"

    @property
    def access_token_url(self) -> str:  # type: ignore[override]
        return f"{self.base_url}/rest/oauth2/latest/token"

    def complete_login(self, request, app, token, **kwargs):
        headers = {"Authorization": f"Bearer {token.token}"}
        base = self.base_url
        with get_adapter().get_requests_session() as sess:
            who = sess.get(f"{base}/plugins/servlet/applinks/whoami", headers=headers)
            slug = who.text.strip()
            if who.status_code != 200 or not slug:
                raise OAuth2Error(f"Bitbucket Server whoami answered {who.status_code}")
            resp = sess.get(f"{base}/rest/api/latest/users/{quote(slug)}", headers=headers)
            resp.raise_for_status()
            extra_data = resp.json()
        return self.get_provider().sociallogin_from_response(request, extra_data)


oauth2_login = OAuth2LoginView.adapter_view(BitbucketServerOAuth2Adapter)
oauth2_callback = OAuth2CallbackView.adapter_view(BitbucketServerOAuth2Adapter)
