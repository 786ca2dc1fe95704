"""API: what a person needs to set a webhook up by hand, and the secret's rotation.

    GET  /api/v1/projects/{project}/pipelines/{name}/webhook         write level (owner, member)
    POST /api/v1/projects/{project}/pipelines/{name}/webhook/rotate  write level: a new secret

The body has the pipeline's webhook secret (the one place it is shown:
read-only members get 403), the receiver URL of every provider, the
image-push URLs of its imageWebHookToken entries (their tokens are the
secret part), the status badge URL and the newest deliveries with their
outcome and whether the signature was right.
"""
from __future__ import annotations

import secrets

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from devops.api.permissions import project_for
from devops.models import Pipeline, WebhookDelivery
from devops.scm.providers import PROVIDERS
from devops.triggers.badge import badge_url

RECENT = 20


class DeliverySerializer(serializers.Serializer):
    provider = serializers.CharField()
    deliveryId = serializers.CharField()
    event = serializers.CharField()
    receivedAt = serializers.DateTimeField()
    signatureOk = serializers.BooleanField()
    outcome = serializers.CharField()
    detail = serializers.CharField()
    executions = serializers.ListField(child=serializers.CharField())


class ImageHookSerializer(serializers.Serializer):
    imageType = serializers.CharField()
    triggerImage = serializers.CharField()
    branches = serializers.ListField(child=serializers.CharField())
    url = serializers.CharField(help_text="the URL to give the registry; '' for the built-in registry "
                                          "(its notifications need no setup) or an entry without a token")


class WebhookSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="the webhook secret; '' until rotated the first time")
    urls = serializers.DictField(child=serializers.CharField(), help_text="provider -> receiver URL")
    events = serializers.DictField(child=serializers.BooleanField(), help_text="push/tag/pull_request enabled")
    imageWebhooks = ImageHookSerializer(many=True)
    badge = serializers.CharField()
    deliveries = DeliverySerializer(many=True)


def _pipeline(request: Request, project: str, name: str) -> Pipeline:
    proj = project_for(request, project, "write")
    pipeline = Pipeline.objects.filter(project=proj, name=name).first()
    if pipeline is None:
        raise NotFound("No such pipeline in this project.")
    return pipeline


def webhook_json(pipeline: Pipeline) -> dict:
    base = settings.PUBLIC_URL
    images = []
    for e in pipeline.image_webhooks or []:
        if not isinstance(e, dict):
            continue
        kind, token = str(e.get("imageType", "")), str(e.get("token") or "")
        url = f"{base}/api/v1/hooks/image/{kind}/{pipeline.name}/{token}" if token and kind != "builtin" else ""
        images.append({"imageType": kind, "triggerImage": str(e.get("triggerImage", "")),
                       "branches": [str(b) for b in e.get("branches") or []], "url": url})
    return {
        "secret": pipeline.webhook_token or "",
        "urls": {k.name: f"{base}/api/v1/hooks/{k.name}/{pipeline.name}" for k in PROVIDERS if k.webhook},
        "events": {"push": pipeline.trigger_webhook_push, "tag": pipeline.trigger_webhook_tag,
                   "pull_request": pipeline.trigger_webhook_pr},
        "imageWebhooks": images,
        "badge": badge_url(pipeline),
        "deliveries": [
            {"provider": d.provider, "deliveryId": d.delivery_id, "event": d.event, "receivedAt": d.received_at,
             "signatureOk": d.signature_ok, "outcome": d.outcome, "detail": d.detail,
             "executions": list(d.executions or [])}
            for d in WebhookDelivery.objects.filter(pipeline=pipeline)[:RECENT]
        ],
    }


@extend_schema(responses=WebhookSerializer, operation_id="pipeline_webhook", tags=["hooks"])
@api_view(["GET"])
def pipeline_webhook(request: Request, project: str, name: str) -> Response:
    return Response(webhook_json(_pipeline(request, project, name)))


@extend_schema(request=None, responses=WebhookSerializer, operation_id="pipeline_webhook_rotate", tags=["hooks"])
@api_view(["POST"])
def rotate_webhook_secret(request: Request, project: str, name: str) -> Response:
    """A new random webhook secret; the old one stops working at once (update the provider's hook)."""
    pipeline = _pipeline(request, project, name)
    pipeline.webhook_token = secrets.token_urlsafe(32)
    pipeline.save(update_fields=["webhook_token"])
    return Response(webhook_json(pipeline))
