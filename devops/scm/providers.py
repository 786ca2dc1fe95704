"""The one table of SCM provider types (devops.kinds): name -> label -> dotted path.

Model choices (`SourceCodeProviderConfig.type`, `SourceCodeCredential.source_code_type`)
and the allauth provider apps in `INSTALLED_APPS` are built from it. The
provider modules (devops/scm/github.py, gitlab.py, bitbucket.py: repository
listing, webhooks, file fetch, commit status) are loaded by `PROVIDERS.load(name)`;
Gitea/Gogs have none yet (KindUnavailable: hooks set up by hand).
Each row's `webhook` names its receiver (devops/triggers/hooks/).
Django-free (settings.py imports it).
"""
from __future__ import annotations

from dataclasses import dataclass

from devops.kinds import Kind, KindTable


@dataclass(frozen=True)
class ProviderKind(Kind):
    oauth_app: str = ""  # the allauth provider app that logs users in ("" = none)
    # The webhook receiver (devops/triggers/events.py states its contract) at
    # /api/v1/hooks/<name>/<pipeline>; a dotted path, imported only when a hook arrives.
    webhook: str = ""


PROVIDERS: KindTable[ProviderKind] = KindTable(
    "SCM provider",
    ProviderKind("github", "GitHub", "devops.scm.github.GitHubProvider",
                 oauth_app="allauth.socialaccount.providers.github", webhook="devops.triggers.hooks.github"),
    ProviderKind("gitlab", "GitLab", "devops.scm.gitlab.GitLabProvider",
                 oauth_app="allauth.socialaccount.providers.gitlab", webhook="devops.triggers.hooks.gitlab"),
    ProviderKind("bitbucketcloud", "Bitbucket Cloud", "devops.scm.bitbucket.BitbucketCloudProvider",
                 oauth_app="allauth.socialaccount.providers.bitbucket_oauth2",
                 webhook="devops.triggers.hooks.bitbucket.Cloud"),
    ProviderKind("bitbucketserver", "Bitbucket Server", "devops.scm.bitbucket.BitbucketServerProvider",
                 oauth_app="devops.oauth.bitbucketserver",  # allauth has none: Slipway's (devops/oauth/)
                 webhook="devops.triggers.hooks.bitbucket.Server"),
    # Hooks set up by hand (no OAuth app, no repository listing yet).
    ProviderKind("gitea", "Gitea", "devops.scm.gitea.GiteaProvider", webhook="devops.triggers.hooks.gitea.Gitea"),
    ProviderKind("gogs", "Gogs", "devops.scm.gitea.GogsProvider", webhook="devops.triggers.hooks.gitea.Gogs"),
)

# A credential may also be a plain git one (token or SSH key, no provider API).
GENERIC_GIT = ("git", "Generic Git")


def oauth_apps() -> list[str]:
    """The allauth provider apps for INSTALLED_APPS, one per provider that has one."""
    return list(dict.fromkeys(k.oauth_app for k in PROVIDERS if k.oauth_app))


def oauth_provider_id(kind: ProviderKind) -> str:
    """allauth's provider id of the row's app (the app package's last name: github, bitbucket_oauth2...)."""
    return kind.oauth_app.rsplit(".", 1)[-1] if kind.oauth_app else ""
