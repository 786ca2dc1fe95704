"""The one table of SCM provider types (devops.kinds): name -> label -> dotted path.

Model choices (`SourceCodeProviderConfig.type`, `SourceCodeCredential.source_code_type`)
and the allauth provider apps in `INSTALLED_APPS` are built from it. The
provider modules (repository listing, webhooks, file fetch, commit status)
are not written yet: `PROVIDERS.load(name)` raises KindUnavailable until they are.
Django-free (settings.py imports it).
"""
from __future__ import annotations

from dataclasses import dataclass

from devops.kinds import Kind, KindTable


@dataclass(frozen=True)
class ProviderKind(Kind):
    oauth_app: str = ""  # the allauth provider app that logs users in ("" = none)


PROVIDERS: KindTable[ProviderKind] = KindTable(
    "SCM provider",
    ProviderKind("github", "GitHub", "devops.scm.github.GitHubProvider",
                 oauth_app="allauth.socialaccount.providers.github"),
    ProviderKind("gitlab", "GitLab", "devops.scm.gitlab.GitLabProvider",
                 oauth_app="allauth.socialaccount.providers.gitlab"),
    ProviderKind("bitbucketcloud", "Bitbucket Cloud", "devops.scm.bitbucket.BitbucketCloudProvider",
                 oauth_app="allauth.socialaccount.providers.bitbucket_oauth2"),
    ProviderKind("bitbucketserver", "Bitbucket Server", "devops.scm.bitbucket.BitbucketServerProvider"),
)

# A credential may also be a plain git one (token or SSH key, no provider API).
GENERIC_GIT = ("git", "Generic Git")


def oauth_apps() -> list[str]:
    """The allauth provider apps for INSTALLED_APPS, one per provider that has one."""
    return list(dict.fromkeys(k.oauth_app for k in PROVIDERS if k.oauth_app))
