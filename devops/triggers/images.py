"""Image-push triggers (Rancher's `imageWebHookToken`): a pushed image that matches runs the pipeline.

Each entry of `Pipeline.image_webhooks` is {imageType, triggerImage,
branches, comment, token}. `imageType` is a row of IMAGE_WEBHOOKS
(image_webhooks.py); each external type's module has `parse(payload) ->
list[ImagePush]`, and its pushes arrive at

    POST /api/v1/hooks/image/<imageType>/<pipeline>/<token>

where `token` is the entry's token (encrypted at rest, compared in constant
time; Harbor, Docker Hub and Aliyun ACR sign nothing, so the URL is the
secret). The built-in registry's pushes arrive through its own
bearer-authenticated notifications (registry_events.py) and the
`image_pushed` signal; `builtin` entries need no token.

A push whose image matches `triggerImage` (`repo`, `repo:tag` or
`host/repo:tag`, the tag a glob; Docker Hub's `library/` is optional) runs
the pipeline on each listed branch (none = the default branch), with
event "push" and trigger type "image". Once per push: the delivery row
(WebhookDelivery, provider = imageType) is unique per pipeline and push id
(the registry event id; else digest and tag; Docker Hub, which sends no
digest: repository, tag and push time).
"""
from __future__ import annotations

import fnmatch
import hmac
import logging
from dataclasses import dataclass

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from devops.controller.actions import ActionError, BranchNotAllowed, RepositoryError, do_run
from devops.kinds import KindNotFound
from devops.models import Pipeline, WebhookDelivery
from devops.triggers.image_webhooks import IMAGE_WEBHOOKS
from devops.triggers.receive import (
    TooLarge,
    claim_delivery,
    finish,
    json_payload,
    read_body,
    too_large,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImagePush:
    repository: str     # "namespace/name" (no host)
    tag: str            # may be a digest (Harbor, pushed by digest) or ""
    digest: str = ""
    host: str = ""      # the registry's host[:port] when the payload names it
    push_id: str = ""   # the sender's id of this push, when it has one

    @property
    def image(self) -> str:
        name = f"{self.host}/{self.repository}" if self.host else self.repository
        return f"{name}:{self.tag}" if self.tag else name

    def delivery_id(self) -> str:
        return self.push_id or f"{self.repository}:{self.tag}@{self.digest}"


def _split(image: str) -> tuple[str, str]:
    """"host/ns/name:tag" -> ("host/ns/name", "tag"); no tag -> ("...", "")."""
    image = image.strip().split("@", 1)[0]
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon + 1:]
    return image, ""


def image_matches(trigger_image: str, push: ImagePush) -> bool:
    """Whether `push` is the image an entry's `triggerImage` names (its tag a glob; none = any tag)."""
    name, tag = _split(trigger_image)
    if not name:
        return False
    names = {push.repository, f"{push.host}/{push.repository}" if push.host else push.repository}
    if push.repository.startswith("library/"):  # Docker Hub's official images: "nginx" is "library/nginx"
        names.add(push.repository[len("library/"):])
    if name not in names:
        return False
    return not tag or fnmatch.fnmatchcase(push.tag, tag)


def entries_of(pipeline: Pipeline, image_type: str) -> list[dict]:
    return [e for e in pipeline.image_webhooks or [] if isinstance(e, dict) and e.get("imageType") == image_type]


def token_entries(pipeline: Pipeline, image_type: str, token: str) -> list[dict]:
    """The entries of `image_type` whose token is `token`; every entry compared in constant time."""
    found = []
    for entry in entries_of(pipeline, image_type):
        stored = str(entry.get("token") or "")
        if stored and hmac.compare_digest(stored.encode(), token.encode()):
            found.append(entry)
    return found


def run_pushes(pipeline: Pipeline, image_type: str, entries: list[dict], pushes: list[ImagePush]) -> tuple[int, dict]:
    """Run `pipeline` for each push matching one of `entries`, on each listed branch; (status, answer)."""
    results = []
    status = 200
    for push in pushes:
        matching = [e for e in entries if image_matches(str(e.get("triggerImage", "")), push)]
        if not matching:
            results.append({"image": push.image, "outcome": "ignored", "detail": "no triggerImage matches"})
            continue
        row = claim_delivery(pipeline, image_type, push.delivery_id(), "push")
        if row is None:
            results.append({"image": push.image, "outcome": "duplicate"})
            continue
        branches = list(dict.fromkeys(b for e in matching for b in (e.get("branches") or [pipeline.default_branch])
                                      if isinstance(b, str) and b))
        ran, notes, retry = [], [], False
        for branch in branches:
            try:
                execution = do_run(pipeline, branch=branch, event="push", trigger_type="image")
            except BranchNotAllowed as exc:
                notes.append(str(exc))
            except RepositoryError as exc:
                notes.append(f"{branch}: the repository could not be read: {exc}")
                retry = True
            except ActionError as exc:
                notes.append(f"{branch}: {exc}")
            else:
                ran.append(execution.name)
                log.info("%s: image %s pushed: started %s", pipeline.name, push.image, execution.name)
        if ran:
            finish(row, "ran", "; ".join(notes), ran)
            status = 202
        elif retry:
            row.delete()  # nothing ran and the repository may come back: a redelivery runs it
            status = max(status, 502)
        else:
            finish(row, "branch-not-allowed" if all("constraint" in n for n in notes) else "error", "; ".join(notes))
        results.append({"image": push.image, "outcome": "ran" if ran else "error" if retry or notes else "ignored",
                        "executions": ran, "detail": "; ".join(notes)})
    return status, {"pushes": results}


class ImageWebhookView(APIView):
    """Harbor, Docker Hub or Aliyun ACR push notifications for one image-webhook entry (token URL)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="hooks_image_receive",
        summary="Receive an image-push notification (Harbor, Docker Hub, Aliyun ACR)",
        description=("The registry's own JSON body. The URL's token is the imageWebHookToken entry's token "
                     "(these registries sign nothing). A matching image runs the pipeline on each listed branch, "
                     "once per push."),
        request=OpenApiTypes.OBJECT,
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="nothing matched, or a duplicate"),
            202: OpenApiResponse(OpenApiTypes.OBJECT, description="runs started: {pushes: [{executions}]}"),
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="malformed body"),
            401: OpenApiResponse(OpenApiTypes.OBJECT, description="wrong token"),
            404: OpenApiResponse(OpenApiTypes.OBJECT, description="unknown image type or pipeline"),
            413: OpenApiResponse(OpenApiTypes.OBJECT, description="body over SLIPWAY_WEBHOOK_MAX_BODY"),
        },
        tags=["hooks"],
    )
    def post(self, request, image_type: str, pipeline: str, token: str) -> Response:
        try:
            module = IMAGE_WEBHOOKS.load(image_type) if image_type != "builtin" else None
        except KindNotFound:
            module = None
        if module is None or not hasattr(module, "parse"):
            return Response({"detail": f"no image-push receiver for {image_type!r}"}, status=404)
        try:
            body = read_body(request)
        except TooLarge:
            return too_large()
        row = Pipeline.objects.select_related("project", "credential").filter(name=pipeline).first()
        if row is None:
            return Response({"detail": "no such pipeline"}, status=404)
        entries = token_entries(row, image_type, token)
        if not entries:
            return Response({"detail": "wrong token"}, status=401)
        try:
            pushes = module.parse(json_payload(request, body))
        except ValueError as exc:
            return Response({"detail": str(exc)}, status=400)
        if row.pipeline_state != "active":
            return Response({"outcome": "disabled", "detail": f"the pipeline is {row.pipeline_state}"})
        status, answer = run_pushes(row, image_type, entries, pushes)
        return Response(answer, status=status)


def on_registry_push(sender, *, repository: str, tag: str, digest: str, registry: str, event: dict, **kw) -> None:
    """`image_pushed` receiver: the built-in registry's pushes, for every pipeline with `builtin` entries
    in the project that owns the repository.

    Never raises (the registry would resend the whole batch): each
    pipeline's failure is logged. Cost: one query over pipelines that have
    image webhooks at all.
    """
    from devops.registry.tokens import in_namespace

    push = ImagePush(repository=repository, tag=tag, digest=digest, host=registry,
                     push_id=str((event or {}).get("id") or ""))
    for pipeline in Pipeline.objects.filter(pipeline_state="active").exclude(image_webhooks=[]).select_related(
            "project", "credential"):
        # A project hears only its own images (`<project id>/...`): another project's pushes are not its news.
        if not in_namespace(pipeline.project_id, repository):
            continue
        entries = entries_of(pipeline, "builtin")
        if not entries:
            continue
        try:
            run_pushes(pipeline, "builtin", entries, [push])
        except Exception:
            log.exception("%s: the image-push trigger for %s failed", pipeline.name, push.image)


def recent_deliveries(pipeline: Pipeline, limit: int = 20) -> list[WebhookDelivery]:
    return list(WebhookDelivery.objects.filter(pipeline=pipeline)[:limit])
