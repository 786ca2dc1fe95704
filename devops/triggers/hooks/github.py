"""GitHub (github.com and GHES) webhooks: `X-Hub-Signature-256`, `X-GitHub-Delivery`.

Events: `push` (branches and tags: a tag push is a push of refs/tags/...),
`pull_request` (opened / synchronize / reopened run; other actions are
ignored), `ping`. The legacy SHA-1 `X-Hub-Signature` is not accepted.
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
    signature_matches,
    text,
)

EVENT_HEADER = "X-GitHub-Event"
PR_ACTIONS = ("opened", "synchronize", "reopened")


def delivery_id(headers) -> str:
    return headers.get("X-GitHub-Delivery", "")


def verify(headers, body: bytes, secret: str) -> bool:
    return signature_matches(headers.get("X-Hub-Signature-256", ""), secret, body)


def parse(event: str, payload: Any) -> Trigger | Ping | Ignored:
    if event == "ping":
        return Ping()
    if event == "push":
        head = get(payload, "head_commit") or {}
        return from_ref(
            text(get(payload, "ref", required=True)), text(get(payload, "after", required=True)),
            message=text(get(head, "message")),
            author=text(get(head, "author.username") or get(payload, "sender.login") or get(head, "author.name")),
            author_email=text(get(head, "author.email") or get(payload, "pusher.email")),
            deleted=bool(get(payload, "deleted")),
        )
    if event == "pull_request":
        return pull_request(payload)
    raise UnknownEvent(f"GitHub event {event!r} is not handled (push, pull_request, ping are)")


def pull_request(payload: Any, actions: tuple[str, ...] = PR_ACTIONS) -> Trigger | Ignored:
    """A `pull_request` payload of GitHub's shape (Gitea and Gogs send the same fields; their
    `actions` that run differ: Gitea says "synchronized")."""
    action = text(get(payload, "action"))
    if action not in actions:
        return Ignored(f"pull request {action or 'event'}: only {', '.join(actions)} run")
    number = get(payload, "number", required=True)
    if not isinstance(number, int):
        raise BadPayload("the payload's 'number' is not an integer")
    return Trigger(
        "pull_request", text(get(payload, "pull_request.base.ref", required=True)),
        text(get(payload, "pull_request.head.sha", required=True)), f"refs/pull/{number}/head",
        message=text(get(payload, "pull_request.title")),
        author=text(get(payload, "pull_request.user.login")), pr_number=number,
    )

