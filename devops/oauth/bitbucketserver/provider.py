from __future__ import annotations

from allauth.socialaccount.providers.base import ProviderAccount
from allauth.socialaccount.providers.oauth2.provider import OAuth2Provider

from devops.oauth.bitbucketserver.views import BitbucketServerOAuth2Adapter


class BitbucketServerAccount(ProviderAccount):
    def get_profile_url(self):
        links = self.account.extra_data.get("links", {}).get("self") or [{}]
        return links[0].get("href")

    def to_str(self):
        return self.account.extra_data.get("slug") or super().to_str()


class BitbucketServerProvider(OAuth2Provider):
    id = "bitbucketserver"
    name = "Bitbucket Server"
    account_class = BitbucketServerAccount
    oauth2_adapter_class = BitbucketServerOAuth2Adapter
    pkce_enabled_default = False

    def get_default_scope(self):
        return ["REPO_ADMIN"]

    def extract_uid(self, data):
        return str(data["id"])

    def extract_common_fields(self, data):
        return {"email": data.get("emailAddress"), "username": data.get("slug"), "name": data.get("displayName")}


provider_classes = [BitbucketServerProvider]
