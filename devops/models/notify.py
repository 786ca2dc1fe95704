"""Project notifiers and the deliveries of run notifications (devops/notifications/, README *Notifications*)."""
from __future__ import annotations

from django.db import models

from devops.crypto import EncryptedJSONField
from devops.notifications.kinds import NOTIFIERS


class Notifier(models.Model):
    """A project's notifier, named by the pipeline file's `recipients[].notifier`.

    `config` holds the kind's plain fields (an e-mail notifier's `from`);
    `secrets` its secret ones (a webhook URL, an HMAC key), encrypted at rest
    and never returned by the API or shown by the page.
    """

    project = models.ForeignKey("devops.Project", on_delete=models.CASCADE, related_name="notifiers")
    name = models.CharField(max_length=63)
    kind = models.CharField(max_length=32, choices=NOTIFIERS.choices())
    config = models.JSONField(default=dict, blank=True)
    secrets = EncryptedJSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="uniq_notifier")]

    def __str__(self) -> str:
        return f"{self.project_id}:{self.name}"


class DeliveryState(models.TextChoices):
    PENDING = "Pending", "Pending"  # to send (again) at `next_attempt_at`
    SENT = "Sent", "Sent"           # the receiver accepted it
    FAILED = "Failed", "Failed"     # permanent failure, or out of attempts


class NotificationDelivery(models.Model):
    """One notification of one finished run to one recipient of its file: its outcome and attempts.

    Created all at once when the controller plans the run's notifications
    (`PipelineExecution.notified` set in the same transaction); then each is
    claimed (`attempts` + 1, `next_attempt_at` pushed past the send's
    lease), sent, and recorded. `error` never holds a secret.
    """

    execution = models.ForeignKey("devops.PipelineExecution", on_delete=models.CASCADE,
                                  related_name="notifications")
    index = models.PositiveIntegerField()  # the recipient's index in the file
    notifier = models.ForeignKey(Notifier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    notifier_name = models.CharField(max_length=255, blank=True)
    kind = models.CharField(max_length=32, blank=True)
    recipient = models.CharField(max_length=1024, blank=True)
    state = models.CharField(max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=255, blank=True)  # "HTTP 200", "accepted for 1 address"
    error = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["execution_id", "index"]
        constraints = [models.UniqueConstraint(fields=["execution", "index"], name="uniq_notification")]
        indexes = [
            # tick_notify reads only pending deliveries: O(pending), not O(history).
            models.Index(fields=["next_attempt_at"], name="notify_pending_idx",
                         condition=models.Q(state="Pending")),
        ]
