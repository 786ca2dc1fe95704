from __future__ import annotations

from django.conf import settings
from django.db import models

from devops.crypto import EncryptedTextField
from devops.scm.providers import GENERIC_GIT, PROVIDERS


class SourceCodeProviderConfig(models.Model):
    """Per project and provider type: the OAuth app, backed by allauth's SocialApp."""

    project = models.ForeignKey("devops.Project", on_delete=models.CASCADE, related_name="provider_configs")
    type = models.CharField(max_length=32, choices=PROVIDERS.choices())
    enabled = models.BooleanField(default=False)
    client_id = models.CharField(max_length=255, blank=True)
    client_secret = EncryptedTextField(blank=True)
    hostname = models.CharField(max_length=255, blank=True, help_text="self-hosted GitLab / Bitbucket Server")
    tls = models.BooleanField(default=True)
    redirect_url = models.CharField(max_length=512, blank=True)
    social_app = models.OneToOneField(
        "socialaccount.SocialApp", null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "type"], name="uniq_provider")]

    def __str__(self) -> str:
        return f"{self.project_id}:{self.type}"


class SourceCodeCredential(models.Model):
    """A user's authorisation for a provider; tokens encrypted, never returned."""

    project = models.ForeignKey("devops.Project", on_delete=models.CASCADE, related_name="credentials")
    name = models.CharField(max_length=100)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    source_code_type = models.CharField(max_length=32, choices=[*PROVIDERS.choices(), GENERIC_GIT])
    login_name = models.CharField(max_length=255, blank=True)
    display_name = models.CharField(max_length=255, blank=True)
    avatar_url = models.URLField(max_length=512, blank=True)
    html_url = models.URLField(max_length=512, blank=True)
    access_token = EncryptedTextField(blank=True)
    refresh_token = EncryptedTextField(blank=True)
    ssh_private_key = EncryptedTextField(blank=True)
    expiry = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    # The provider answered 401 (revoked, or a refresh failed): the repositories
    # page says so and offers "reconnect"; cleared by the next successful connect.
    revoked = models.BooleanField(default=False)
    last_error = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="uniq_credential")]

    def __str__(self) -> str:
        return f"{self.project_id}:{self.name}"

    def git_username(self) -> str:
        """The HTTP user name git sends with the token: each provider's word for an OAuth token."""
        return GIT_OAUTH_USER.get(self.source_code_type, self.login_name or "")


# The user name that goes with an OAuth token over HTTPS (GitHub takes any).
GIT_OAUTH_USER = {"gitlab": "oauth2", "bitbucketcloud": "x-token-auth"}


class SourceCodeRepository(models.Model):
    project = models.ForeignKey("devops.Project", on_delete=models.CASCADE, related_name="repositories")
    credential = models.ForeignKey(
        SourceCodeCredential, null=True, blank=True, on_delete=models.CASCADE, related_name="repositories"
    )
    source_code_type = models.CharField(max_length=32)
    url = models.CharField(max_length=1024)
    default_branch = models.CharField(max_length=255, blank=True)
    language = models.CharField(max_length=64, blank=True)
    permissions = models.JSONField(default=dict, blank=True)
    # As the provider lists it (devops.scm.base.Repo): API paths use full_name (GitLab: api_id).
    full_name = models.CharField(max_length=512, blank=True)
    external_id = models.CharField(max_length=128, blank=True)
    api_id = models.CharField(max_length=128, blank=True)
    html_url = models.CharField(max_length=1024, blank=True)
    private = models.BooleanField(default=False)
    refreshed = models.DateTimeField(null=True, blank=True)
    # "Enable": the pipeline made for this repository and the provider webhook it points at.
    pipeline = models.OneToOneField("devops.Pipeline", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="scm_repository")
    hook_id = models.CharField(max_length=128, blank=True)
    hook_error = models.TextField(blank=True)

    class Meta:
        ordering = ["full_name", "url"]
        constraints = [models.UniqueConstraint(fields=["credential", "external_id"], name="uniq_scm_repo")]

    def __str__(self) -> str:
        return self.url


class CommitStatus(models.Model):
    """What Slipway last told the provider about one execution's commit (devops/controller/commit_status.py).

    `sent` is the last state the provider accepted ("" = none yet); the tick
    reports whenever the execution's state maps to something else, so a crash
    between the provider's answer and this row's write only repeats one
    (idempotent) status. Transient failures back off (`attempts`, `retry_at`);
    `done` once a final state is reported or given up.
    """

    execution = models.OneToOneField("devops.PipelineExecution", on_delete=models.CASCADE,
                                     related_name="commit_status")
    sent = models.CharField(max_length=16, blank=True)
    done = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    retry_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["retry_at"], name="commit_status_open_idx", condition=models.Q(done=False))]

    def __str__(self) -> str:
        return f"{self.execution_id}:{self.sent}"
