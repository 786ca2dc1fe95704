"""Gitea and Gogs webhooks: `X-Gitea-Signature` / `X-Gogs-Signature` (HMAC-SHA256 hex, no prefix).

Gitea also sends GitHub-style headers; the Gitea/Gogs ones are used. The
deprecated in-body `secret` field is never trusted. Events: `push`
(branches and tags), `pull_request` (opened / synchronized / reopened).
"""
from __future__ import annotations

from typing import Any

from devops.triggers.events import (
    Ignored,
    Ping,
    Trigger,
    UnknownEvent,
    from_ref,
    get,
    signature_matches,
    text,
)
from devops.triggers.hooks.github import pull_request

PR_ACTIONS = ("opened", "synchronized", "reopened")


def _parse(event: str, payload: Any, who: str) -> Trigger | Ping | Ignored:
    if event == "push":
        after = text(get(payload, "after", required=True))
        head = get(payload, "head_commit") or next(
            (c for c in get(payload, "commits") or [] if isinstance(c, dict) and c.get("id") == after), {})
        return from_ref(
            text(get(payload, "ref", required=True)), after, message=text(get(head, "message")),
            author=text(get(head, "author.username") or get(payload, "pusher.login") or get(head, "author.name")),
            author_email=text(get(head, "author.email") or get(payload, "pusher.email")),
        )
    if event == "pull_request":
        return pull_request(payload, PR_ACTIONS)
    raise UnknownEvent(f"{who} event {event!r} is not handled (push, pull_request are)")


class Gitea:
    EVENT_HEADER = "X-Gitea-Event"

    @staticmethod
    def delivery_id(headers) -> str:
        return headers.get("X-Gitea-Delivery", "")

    @staticmethod
    def verify(headers, body: bytes, secret: str) -> bool:
        return signature_matches(headers.get("X-Gitea-Signature", ""), secret, body, prefix="")

    @staticmethod
    def parse(event: str, payload: Any) -> Trigger | Ping | Ignored:
        return _parse(event, payload, "Gitea")


class Gogs:
    EVENT_HEADER = "X-Gogs-Event"

    @staticmethod
    def delivery_id(headers) -> str:
        return headers.get("X-Gogs-Delivery", "")

    @staticmethod
    def verify(headers, body: bytes, secret: str) -> bool:
        return signature_matches(headers.get("X-Gogs-Signature", ""), secret, body, prefix="")

    @staticmethod
    def parse(event: str, payload: Any) -> Trigger | Ping | Ignored:
        return _parse(event, payload, "Gogs")
