"""GitLab (gitlab.com and self-managed) webhooks: `X-Gitlab-Token`, `Idempotency-Key`.

The secret token is sent verbatim (no HMAC): compared in constant time.
Events: `Push Hook`, `Tag Push Hook`, `Merge Request Hook` (open / reopen /
update with new commits run; others are ignored). GitLab has no ping event:
its "Test" button sends a Push Hook.
"""
from __future__ import annotations

from typing import Any

from devops.triggers.events import (
    BadPayload,
    Ignored,
    Ping,
    Trigger,
    UnknownEvent,
    from_ref,
    get,
    text,
    token_matches,
)

EVENT_HEADER = "X-Gitlab-Event"
MR_ACTIONS = ("open", "reopen", "update")


def delivery_id(headers) -> str:
    # Idempotency-Key stays the same across retries; X-Gitlab-Event-UUID for older versions.
    return headers.get("Idempotency-Key", "") or headers.get("X-Gitlab-Event-UUID", "")


def verify(headers, body: bytes, secret: str) -> bool:
    return token_matches(headers.get("X-Gitlab-Token", ""), secret)


def _head_commit(payload: Any, sha: str) -> dict:
    for c in get(payload, "commits") or []:
        if isinstance(c, dict) and c.get("id") == sha:
            return c
    return {}


def parse(event: str, payload: Any) -> Trigger | Ping | Ignored:
    if event in ("Push Hook", "Tag Push Hook"):
        sha = text(get(payload, "checkout_sha") or get(payload, "after", required=True))
        head = _head_commit(payload, sha)
        return from_ref(
            text(get(payload, "ref", required=True)), text(get(payload, "after", required=True)),
            message=text(get(head, "message") or get(payload, "message")),
            author=text(get(payload, "user_username") or get(payload, "user_name")),
            author_email=text(get(payload, "user_email") or get(head, "author.email")),
        )
    if event == "Merge Request Hook":
        action = text(get(payload, "object_attributes.action"))
        if action not in MR_ACTIONS:
            return Ignored(f"merge request {action or 'event'}: only {', '.join(MR_ACTIONS)} run")
        if action == "update" and not get(payload, "object_attributes.oldrev"):
            return Ignored("merge request updated without new commits")
        iid = get(payload, "object_attributes.iid", required=True)
        if not isinstance(iid, int):
            raise BadPayload("the payload's 'object_attributes.iid' is not an integer")
        return Trigger(
            "pull_request", text(get(payload, "object_attributes.target_branch", required=True)),
            text(get(payload, "object_attributes.last_commit.id", required=True)),
            f"refs/merge-requests/{iid}/head",
            message=text(get(payload, "object_attributes.title")),
            author=text(get(payload, "user.username")),
            author_email=text(get(payload, "object_attributes.last_commit.author.email")), pr_number=iid,
        )
    raise UnknownEvent(f"GitLab event {event!r} is not handled (Push Hook, Tag Push Hook, Merge Request Hook are)")



