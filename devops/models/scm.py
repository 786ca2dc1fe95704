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

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="uniq_credential")]

    def __str__(self) -> str:
        return f"{self.project_id}:{self.name}"


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

    class Meta:
        ordering = ["url"]

    def __str__(self) -> str:
        return self.url
