from __future__ import annotations

from django.db import models
from django.db.models import Q


class WebhookDelivery(models.Model):
    """One request a trigger received: a provider webhook, an image push, a registry notification.

    `delivery_id` is the sender's id of the delivery (`X-GitHub-Delivery`,
    `Idempotency-Key`, `X-Request-UUID`, `X-Request-Id`, `X-Gitea-Delivery`,
    the registry event id, digest+tag for image pushes). A signed delivery is
    unique per (pipeline, provider, delivery_id): the row is inserted before
    anything runs, so a redelivery (or two racing copies) runs once. Rows of
    deliveries whose signature failed do not take the id (a forged request
    must not block the real one) and only the newest few are kept.
    """

    pipeline = models.ForeignKey("devops.Pipeline", on_delete=models.CASCADE, related_name="deliveries")
    provider = models.CharField(max_length=32)   # a PROVIDERS or IMAGE_WEBHOOKS name
    delivery_id = models.CharField(max_length=255)
    received_at = models.DateTimeField(auto_now_add=True)
    event = models.CharField(max_length=64, blank=True)          # the provider's event name
    signature_ok = models.BooleanField(default=False)
    # received (being handled) | ran | ignored | disabled | branch-not-allowed | error | bad-signature | ping
    outcome = models.CharField(max_length=32, default="received")
    detail = models.TextField(blank=True)                       # why, for people (never a secret)
    executions = models.JSONField(default=list, blank=True)     # names of the runs it started

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "provider", "delivery_id"], condition=Q(signature_ok=True),
                                    name="delivery_once"),
        ]
        indexes = [models.Index(fields=["pipeline", "-received_at"], name="delivery_recent_idx")]

    def __str__(self) -> str:
        return f"{self.provider}:{self.delivery_id} ({self.outcome})"
