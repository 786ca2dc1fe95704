"""Harbor's image-push notifications ("Default" payload format, Harbor 2.x): `PUSH_ARTIFACT`."""
from __future__ import annotations

from typing import Any

from devops.triggers.events import get, text
from devops.triggers.images import ImagePush


def parse(payload: Any) -> list[ImagePush]:
    """One ImagePush per pushed resource; other event types (pulls, scans, deletes) push nothing."""
    if text(get(payload, "type")) != "PUSH_ARTIFACT":
        return []
    repo = text(get(payload, "event_data.repository.repo_full_name"))
    if not repo:
        raise ValueError("the payload has no 'event_data.repository.repo_full_name'")
    pushes = []
    for res in get(payload, "event_data.resources") or []:
        if not isinstance(res, dict):
            continue
        url = text(res.get("resource_url"))
        host = url.split("/", 1)[0] if "/" in url else ""
        pushes.append(ImagePush(repository=repo, tag=text(res.get("tag")), digest=text(res.get("digest")),
                                host=host))
    return pushes
