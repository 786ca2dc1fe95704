"""Docker Hub's repository webhooks: one push per request (no digest, no signature)."""
from __future__ import annotations

from typing import Any

from devops.triggers.events import get, text
from devops.triggers.images import ImagePush


def parse(payload: Any) -> list[ImagePush]:
    repo = text(get(payload, "repository.repo_name"))
    if not repo or get(payload, "push_data") is None:
        raise ValueError("the payload has no 'repository.repo_name' or 'push_data'")
    tag = text(get(payload, "push_data.tag"))
    # Docker Hub sends no digest or delivery id: the push time tells pushes of one tag apart.
    pushed_at = text(get(payload, "push_data.pushed_at"))
    return [ImagePush(repository=repo, tag=tag, host="docker.io", push_id=f"{repo}:{tag}@{pushed_at}")]
