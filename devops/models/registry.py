from __future__ import annotations

from django.db import models

from devops.crypto import EncryptedTextField


class RegistryCredential(models.Model):
    """A project's login to a remote image registry, used by publish steps and image pulls.

    Write-only: the API never returns the password; it is encrypted at rest,
    reaches the runner as RunSpec.registry_auth and is masked in logs.
    """

    project = models.ForeignKey("devops.Project", on_delete=models.CASCADE, related_name="registry_credentials")
    host = models.CharField(max_length=255)      # e.g. harbor.example.com, docker.io, 10.0.0.5:5000
    username = models.CharField(max_length=255)
    password = EncryptedTextField()
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["host"]
        constraints = [models.UniqueConstraint(fields=["project", "host"], name="uniq_registry_credential")]

    def __str__(self) -> str:
        return f"{self.project_id}:{self.username}@{self.host}"
