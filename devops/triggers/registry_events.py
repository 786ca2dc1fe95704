"""`POST /api/v1/registry/notifications`: events from the built-in registry.

docker-registry sends `{"events": [...]}` (media type
application/vnd.docker.distribution.events.v1+json) with the bearer token
from DATA_DIR/registry/state.json. Each push of a manifest is logged,
appended to DATA_DIR/registry/events.jsonl (bounded) and announced with the
`image_pushed` signal, which the image-push trigger connects to.
"""
from __future__ import annotations

import hmac
import json
import logging
from pathlib import Path

from django.conf import settings
from django.dispatch import Signal
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from devops.registry.server import notification_token, registry_dir, registry_info

log = logging.getLogger(__name__)

# Sent once per pushed manifest: repository="demo/app", tag="1" (may be ""),
# digest="sha256:...", registry="127.0.0.1:5000", event=<the raw event dict>.
image_pushed = Signal()

MAX_EVENTS_FILE = 1024 * 1024  # keep the last ~1 MiB of events
MAX_BODY = 1024 * 1024


@csrf_exempt
@require_POST
def registry_notifications(request: HttpRequest) -> HttpResponse:
    expected = notification_token(settings.DATA_DIR)
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        return JsonResponse({"detail": "bad token"}, status=401)
    if len(request.body) > MAX_BODY:
        return JsonResponse({"detail": "too large"}, status=413)
    try:
        events = json.loads(request.body or b"{}").get("events") or []
    except (ValueError, AttributeError):
        return JsonResponse({"detail": "not JSON"}, status=400)
    info = registry_info(settings.DATA_DIR)
    address = info.address if info else ""
    pushes = 0
    for event in events if isinstance(events, list) else []:
        if not isinstance(event, dict) or event.get("action") != "push":
            continue
        target = event.get("target") or {}
        if "manifest" not in str(target.get("mediaType", "")):
            continue  # layer blobs: not an image yet
        repo, tag, digest = str(target.get("repository", "")), str(target.get("tag", "")), str(target.get("digest", ""))
        log.info("registry push: %s/%s:%s@%s", address, repo, tag, digest)
        _append(registry_dir(settings.DATA_DIR) / "events.jsonl",
                {"repository": repo, "tag": tag, "digest": digest, "timestamp": event.get("timestamp", "")})
        image_pushed.send(sender=registry_notifications, repository=repo, tag=tag, digest=digest,
                          registry=address, event=event)
        pushes += 1
    return JsonResponse({"accepted": pushes})


def _append(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
    if path.stat().st_size > MAX_EVENTS_FILE:
        lines = path.read_text().splitlines()[-1000:]
        path.write_text("\n".join(lines) + "\n")


def recent_pushes(limit: int = 50) -> list[dict]:
    """The newest pushes the registry announced, newest first."""
    path = registry_dir(settings.DATA_DIR) / "events.jsonl"
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(ln) for ln in reversed(lines[-limit:]) if ln.strip()]
