"""Alibaba Cloud Container Registry (personal edition) trigger notifications."""
from __future__ import annotations

from typing import Any

from devops.triggers.events import get, text
from devops.triggers.images import ImagePush


def parse(payload: Any) -> list[ImagePush]:
    repo = text(get(payload, "repository.repo_full_name"))
    if not repo or get(payload, "push_data") is None:
        raise ValueError("the payload has no 'repository.repo_full_name' or 'push_data'")
    region = text(get(payload, "repository.region"))
    return [ImagePush(repository=repo, tag=text(get(payload, "push_data.tag")),
                      digest=text(get(payload, "push_data.digest")),
                      host=f"registry.{region}.aliyuncs.com" if region else "",
                      push_id="" if get(payload, "push_data.digest") else
                      f"{repo}:{text(get(payload, 'push_data.tag'))}@{text(get(payload, 'push_data.pushed_at'))}")]
