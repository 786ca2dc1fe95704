"""`POST /api/v1/hooks/<provider>/<pipeline>`: provider webhooks -> `do_run`.

One flow for every provider; what differs (headers, signature, payload
shape) is the provider's receiver module, named by its row in
`devops.scm.providers.PROVIDERS` (`webhook=`). In order, and what each
refusal leaves behind:

1. unknown provider or pipeline -> 404; a body over SLIPWAY_WEBHOOK_MAX_BODY
   -> 413 (Content-Length is checked before a byte is read, and the read
   itself stops one byte past the limit) — nothing recorded;
2. the provider's authentication against the pipeline's webhook secret
   (`Pipeline.webhook_token`, encrypted at rest), in constant time; no secret
   set, unsigned or badly signed -> 401, a `bad-signature` delivery row that
   does not take the delivery id (the newest BAD_KEEP are kept);
3. not JSON / not an object / no event header / unknown event / a field
   missing -> 400 naming the problem, nothing recorded;
4. the delivery row is inserted (unique per pipeline, provider and delivery
   id): a redelivery answers 200 `duplicate` and runs nothing;
5. ping -> 200; a deleted ref, a closed PR, an event the pipeline's
   trigger flags turn off, the file's `branch` constraint -> 200 with the
   outcome recorded; a run -> 202 with its name. A repository that cannot
   be read (RepositoryError) -> 502 and the row is removed, so the
   provider's redelivery runs it; any other error removes it too (500).
"""
from __future__ import annotations

import hashlib
import json
import logging
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings
from django.db import IntegrityError, transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from devops.controller.actions import ActionError, BranchNotAllowed, RepositoryError, do_run
from devops.kinds import KindNotFound, import_dotted
from devops.models import Pipeline, WebhookDelivery
from devops.scm.providers import PROVIDERS
from devops.triggers.events import BadPayload, Ignored, Ping, Trigger, UnknownEvent

log = logging.getLogger(__name__)

BAD_KEEP = 20  # bad-signature rows kept per pipeline (enough to see what is wrong, no more)

# The pipeline's trigger flag for each event (Rancher's triggerWebhookPush/Pr/Tag).
EVENT_FLAGS = {"push": "trigger_webhook_push", "tag": "trigger_webhook_tag",
               "pull_request": "trigger_webhook_pr"}


class TooLarge(Exception):
    pass


def read_body(request, limit: int | None = None) -> bytes:
    """The raw body, at most `limit` bytes; TooLarge before reading when Content-Length says more."""
    limit = limit or settings.SLIPWAY_WEBHOOK_MAX_BODY
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise TooLarge(declared)
    body = request.read(limit + 1)  # a body without (or lying about) its length stops here too
    if len(body) > limit:
        raise TooLarge(len(body))
    return body


def too_large(limit: int | None = None) -> Response:
    limit = limit or settings.SLIPWAY_WEBHOOK_MAX_BODY
    return Response({"detail": f"the body is over the limit of {limit} bytes (SLIPWAY_WEBHOOK_MAX_BODY)"},
                    status=413)


def json_payload(request, body: bytes) -> Any:
    """The JSON object of the body (or of its `payload` form field); ValueError naming the problem."""
    if request.content_type == "application/x-www-form-urlencoded":
        fields = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=50)
        if "payload" not in fields:
            raise ValueError("the form body has no 'payload' field")
        body = fields["payload"][0].encode()
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"the body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ValueError(f"the body is a JSON {type(payload).__name__}, not an object")
    return payload


def record_bad_signature(pipeline: Pipeline, provider: str, delivery: str, event: str, detail: str) -> None:
    WebhookDelivery.objects.create(pipeline=pipeline, provider=provider, delivery_id=delivery[:255],
                                   event=event[:64], signature_ok=False, outcome="bad-signature", detail=detail)
    old = (WebhookDelivery.objects.filter(pipeline=pipeline, signature_ok=False)
           .order_by("-received_at", "-id").values_list("id", flat=True)[BAD_KEEP:])
    WebhookDelivery.objects.filter(id__in=list(old)).delete()


def claim_delivery(pipeline: Pipeline, provider: str, delivery: str, event: str) -> WebhookDelivery | None:
    """The new delivery row, or None when this delivery was received before (a redelivery)."""
    try:
        with transaction.atomic():
            return WebhookDelivery.objects.create(pipeline=pipeline, provider=provider, delivery_id=delivery[:255],
                                                  event=event[:64], signature_ok=True)
    except IntegrityError:
        return None


def finish(row: WebhookDelivery, outcome: str, detail: str = "", executions: list[str] | None = None) -> None:
    row.outcome, row.detail, row.executions = outcome, detail[:2000], executions or []
    row.save(update_fields=["outcome", "detail", "executions"])


def start_run(row: WebhookDelivery, pipeline: Pipeline, trigger: Trigger, *, trigger_type: str,
              extra: dict | None = None) -> tuple[int, dict]:
    """do_run for one trigger of a claimed delivery; the outcome recorded; (status, body)."""
    flag = EVENT_FLAGS.get(trigger.event)
    if flag and not getattr(pipeline, flag):
        detail = f"{trigger.event} events are turned off for this pipeline ({flag})"
        finish(row, "disabled", detail)
        return 200, {"outcome": "disabled", "detail": detail}
    try:
        execution = do_run(pipeline, branch=trigger.branch, commit=trigger.commit, ref=trigger.ref,
                           event=trigger.event, message=trigger.message.strip(), author=trigger.author,
                           author_email=trigger.author_email, trigger_type=trigger_type)
    except BranchNotAllowed as exc:
        finish(row, "branch-not-allowed", str(exc))
        return 200, {"outcome": "branch-not-allowed", "detail": str(exc)}
    except RepositoryError as exc:
        # Maybe passing (the remote is down): forget the delivery so a redelivery runs it.
        row.delete()
        return 502, {"outcome": "error", "detail": f"the repository could not be read: {exc}"}
    except ActionError as exc:  # the pipeline file is invalid: the same commit fails again
        finish(row, "error", str(exc))
        return 200, {"outcome": "error", "detail": str(exc)}
    except BaseException:
        row.delete()
        raise
    finish(row, "ran", executions=[execution.name])
    log.info("%s: %s %s@%s started %s", row.provider, trigger.event, trigger.branch, trigger.commit[:12],
             execution.name)
    return 202, {"outcome": "ran", "execution": execution.name, **(extra or {})}


def receiver_for(provider: str):
    try:
        kind = PROVIDERS.get(provider)
    except KindNotFound:
        return None
    return import_dotted(kind.webhook) if kind.webhook else None


class WebhookView(APIView):
    """A provider's webhook for one pipeline; authenticated by the provider's signature or token."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="hooks_provider_receive",
        summary="Receive a provider webhook (GitHub, GitLab, Bitbucket Cloud/Server, Gitea, Gogs)",
        description=(
            "The provider's own request, signed the provider's way with the pipeline's webhook secret: "
            "GitHub `X-Hub-Signature-256`, GitLab `X-Gitlab-Token`, Bitbucket `X-Hub-Signature`, "
            "Gitea `X-Gitea-Signature`, Gogs `X-Gogs-Signature`. Push, tag and pull/merge request events "
            "start a run; a redelivery (same delivery id) runs nothing."),
        request=OpenApiTypes.OBJECT,
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="ping, duplicate, or nothing to run (outcome)"),
            202: OpenApiResponse(OpenApiTypes.OBJECT, description="a run was started: {execution}"),
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="malformed body or unknown event"),
            401: OpenApiResponse(OpenApiTypes.OBJECT, description="unsigned or badly signed"),
            404: OpenApiResponse(OpenApiTypes.OBJECT, description="unknown provider or pipeline"),
            413: OpenApiResponse(OpenApiTypes.OBJECT, description="body over SLIPWAY_WEBHOOK_MAX_BODY"),
            502: OpenApiResponse(OpenApiTypes.OBJECT, description="the repository could not be read"),
        },
        tags=["hooks"],
    )
    def post(self, request, provider: str, pipeline: str) -> Response:
        receiver = receiver_for(provider)
        if receiver is None:
            return Response({"detail": f"no webhook receiver for {provider!r}"}, status=404)
        try:
            body = read_body(request)
        except TooLarge:
            return too_large()
        row = Pipeline.objects.select_related("project", "credential").filter(name=pipeline).first()
        if row is None:
            return Response({"detail": "no such pipeline"}, status=404)
        headers = request.headers
        event = headers.get(receiver.EVENT_HEADER, "")
        delivery = receiver.delivery_id(headers) or "sha256:" + hashlib.sha256(body).hexdigest()
        secret = row.webhook_token or ""
        if not secret:
            record_bad_signature(row, provider, delivery, event, "the pipeline has no webhook secret")
            return Response({"detail": "this pipeline has no webhook secret: set one (rotate) first"}, status=401)
        if not receiver.verify(headers, body, secret):
            record_bad_signature(row, provider, delivery, event, "signature or token missing or wrong")
            return Response({"detail": "signature or token missing or wrong"}, status=401)
        if not event:
            return Response({"detail": f"no {receiver.EVENT_HEADER} header"}, status=400)
        try:
            parsed = receiver.parse(event, json_payload(request, body))
        except (UnknownEvent, BadPayload, ValueError) as exc:
            return Response({"detail": str(exc)}, status=400)
        claimed = claim_delivery(row, provider, delivery, event)
        if claimed is None:
            return Response({"outcome": "duplicate", "detail": f"delivery {delivery} was received before"})
        if isinstance(parsed, Ping):
            finish(claimed, "ping")
            return Response({"outcome": "ping"})
        if isinstance(parsed, Ignored):
            finish(claimed, "ignored", parsed.reason)
            return Response({"outcome": "ignored", "detail": parsed.reason})
        if row.pipeline_state != "active":
            finish(claimed, "disabled", f"the pipeline is {row.pipeline_state}")
            return Response({"outcome": "disabled", "detail": f"the pipeline is {row.pipeline_state}"})
        status, answer = start_run(claimed, row, parsed, trigger_type="webhook",
                                   extra={"pr": parsed.pr_number} if parsed.pr_number else None)
        return Response(answer, status=status)
