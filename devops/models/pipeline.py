from __future__ import annotations

from django.db import models

from devops.crypto import EncryptedTextField, EncryptedTokensJSONField
from devops.models.ids import random_id


def _pipeline_name() -> str:
    return random_id("p-")


class Pipeline(models.Model):
    """A repository wired to Slipway; its runs are PipelineExecutions.

    spec: repository, credential, branch, trigger flags, image-push triggers.
    status: state, nextRun, last run summary, webhook, recent nodes.
    """

    project = models.ForeignKey("devops.Project", on_delete=models.CASCADE, related_name="pipelines")
    name = models.CharField(max_length=64, unique=True, default=_pipeline_name)
    display_name = models.CharField(max_length=255, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    # --- spec
    repository_url = models.CharField(max_length=1024)
    credential = models.ForeignKey(
        "devops.SourceCodeCredential", null=True, blank=True, on_delete=models.SET_NULL, related_name="pipelines"
    )
    default_branch = models.CharField(max_length=255, default="master")
    trigger_webhook_push = models.BooleanField(default=True)
    trigger_webhook_pr = models.BooleanField(default=False)
    trigger_webhook_tag = models.BooleanField(default=False)
    # Rancher's imageWebHookToken entries: [{branches, comment, imageType, token, triggerImage}];
    # each `token` encrypted at rest, the rest plain JSON.
    image_webhooks = EncryptedTokensJSONField(default=list, blank=True)
    # Generic Git polling (devops/controller/polling.py): `git ls-remote` every
    # poll_interval seconds (0 = off) on the branches matching poll_branches
    # (glob patterns; none = the default branch).
    poll_interval = models.PositiveIntegerField(default=0)
    poll_branches = models.JSONField(default=list, blank=True)
    # --- status
    pipeline_state = models.CharField(max_length=16, default="active")
    next_run = models.PositiveIntegerField(default=1)
    last_execution_id = models.CharField(max_length=128, blank=True)
    last_run_state = models.CharField(max_length=16, blank=True)
    last_started = models.DateTimeField(null=True, blank=True)
    webhook_id = models.CharField(max_length=128, blank=True)
    webhook_token = EncryptedTextField(blank=True)  # encrypted at rest, like every credential
    # Nodes of recent runs, newest first (cache affinity, DESIGN §6).
    execution_scheduled_info = models.JSONField(default=list, blank=True)
    # What the last poll saw: {"refs/heads/<branch>": "<commit>"}, and when.
    poll_heads = models.JSONField(default=dict, blank=True)
    polled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project_id", "name"]
        indexes = [models.Index(fields=["repository_url"])]

    def __str__(self) -> str:
        return f"{self.project_id}:{self.name}"
