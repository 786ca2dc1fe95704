from __future__ import annotations

from django.conf import settings
from django.db import models

from devops.crypto import EncryptedJSONField
from devops.models.ids import random_id


def _project_id() -> str:
    return random_id("p-")


class Project(models.Model):
    """A Rancher project (`c-xxxx:p-xxxx`): the unit of membership and quota."""

    id = models.CharField(primary_key=True, max_length=32, default=_project_id, editable=False)
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    cluster_id = models.CharField(max_length=32, default="local")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    @property
    def namespaced_id(self) -> str:
        """Rancher's project reference `cluster:project`."""
        return f"{self.cluster_id}:{self.id}"

    def setting(self, name: str) -> str:
        """The effective value of a PipelineSetting (value, else default)."""
        row = self.settings.filter(name=name).first()
        if row is not None:
            return row.effective
        return DEFAULT_SETTINGS.get(name, ("", ""))[0]

    def role_of(self, user) -> str | None:
        if user is None or not user.is_authenticated:
            return None
        if user.is_superuser:
            return Role.OWNER
        member = self.members.filter(user=user).only("role").first()
        return member.role if member else None


class Role(models.TextChoices):
    OWNER = "owner", "Owner"            # everything, including members and settings
    MEMBER = "member", "Member"         # run, edit pipelines and secrets
    READ_ONLY = "read-only", "Read-only"  # see pipelines, executions and logs

    @classmethod
    def can_write(cls, role: str | None) -> bool:
        return role in (cls.OWNER, cls.MEMBER)


class ProjectMember(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="uniq_member")]

    def __str__(self) -> str:
        return f"{self.user} in {self.project_id} as {self.role}"


# name -> (default, one-line meaning). Seeded per project; `default` is shown
# when `value` is empty, as Rancher's PipelineSetting does.
DEFAULT_SETTINGS: dict[str, tuple[str, str]] = {
    "executor-quota": ("2", "Executions of the project that may be Waiting or Building at once"),
    "executor-cpu-request": ("100m", "CPU request of each step"),
    "executor-cpu-limit": ("1", "CPU limit of each step"),
    "executor-memory-request": ("100Mi", "Memory request of each step"),
    "executor-memory-limit": ("1Gi", "Memory limit of each step"),
    "devops-cache-dir": ("", "Cache root (empty: under SLIPWAY_DATA_DIR/cache)"),
    "cache-size-cap": ("10Gi", "Total cache size of the project; least recently used caches are evicted past it"),
    "log-size-cap": ("100Mi", "Largest log of one step; the rest is dropped and the log says how much"),
    "registry-mirror": ("", "Registry mirror / pull-through cache for step images"),
    "pip-index-url": ("", "PIP_INDEX_URL given to steps"),
    "npm-registry": ("", "npm_config_registry given to steps"),
    "goproxy": ("", "GOPROXY given to steps"),
    "maven-mirror": ("", "Maven mirror URL written into a settings.xml given to steps"),
    "namespaces": ("", "The project's Kubernetes namespaces, comma-separated: the Jenkins service account may act in each"),
    "deploy-namespace": ("default", "Namespace of deploy steps when the step and the deploy-target secret name none"),
    "deploy-tools-image": ("", "Image with helm (and kubectl) that applyAppConfig steps run in; empty: they fail saying so"),
    "step-network": ("outbound", "Network of container/sandbox steps: outbound (internet, never this host's services) or none"),
}


class PipelineSetting(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="settings")
    name = models.CharField(max_length=64)
    value = models.CharField(max_length=1024, blank=True)
    default = models.CharField(max_length=1024, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="uniq_setting")]

    def __str__(self) -> str:
        return f"{self.project_id}:{self.name}={self.effective}"

    @property
    def effective(self) -> str:
        return self.value if self.value != "" else self.default

    @property
    def description(self) -> str:
        return DEFAULT_SETTINGS.get(self.name, ("", ""))[1]


class Secret(models.Model):
    """A project secret: name + key/value pairs, the source of a step's `envFrom`.

    Values are encrypted at rest and never returned by the API or logged.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="secrets")
    name = models.CharField(max_length=253)
    data = EncryptedJSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="uniq_secret")]

    def __str__(self) -> str:
        return f"{self.project_id}:{self.name}"
