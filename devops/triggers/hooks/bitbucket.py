"""Bitbucket webhooks: Cloud (`repo:push`, `pullrequest:*`) and Server/Data Center (`repo:refs_changed`, `pr:*`).

Both sign with `X-Hub-Signature: sha256=<HMAC-SHA256 hex of the raw body>`
when the hook has a secret; Slipway always sets one and refuses unsigned
deliveries (Rancher accepted Bitbucket Cloud hooks without any check).
Delivery ids: Cloud `X-Request-UUID`, Server `X-Request-Id`. Bitbucket
Server's "Test connection" sends `diagnostics:ping`.
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

EVENT_HEADER = "X-Event-Key"


def verify(headers, body: bytes, secret: str) -> bool:
    return signature_matches(headers.get("X-Hub-Signature", ""), secret, body)


def _one_change(changes: Any) -> Any:
    """The one ref change a run is started for.

    A push of several refs at once starts one run, for the first change
    that is not a deletion (Rancher read `changes[0]`; deletions first in
    the list would otherwise swallow the push).
    """
    if not isinstance(changes, list) or not changes:
        raise BadPayload("the payload has no ref changes")
    return changes


class Cloud:
    EVENT_HEADER = EVENT_HEADER
    verify = staticmethod(verify)

    @staticmethod
    def delivery_id(headers) -> str:
        return headers.get("X-Request-UUID", "")

    @staticmethod
    def parse(event: str, payload: Any) -> Trigger | Ping | Ignored:
        if event == "repo:push":
            reasons = []
            for change in _one_change(get(payload, "push.changes", required=True)):
                new = get(change, "new")
                if not new:  # closed: the branch or tag was deleted
                    reasons.append(f"{text(get(change, 'old.name'))} was deleted")
                    continue
                kind, name = text(get(new, "type")), text(get(new, "name"))
                prefix = {"branch": "refs/heads/", "tag": "refs/tags/", "named_branch": "refs/heads/"}.get(kind)
                if prefix is None:
                    reasons.append(f"a push of a {kind or 'nameless'} ref")
                    continue
                target = get(new, "target") or {}
                author = get(target, "author.user.nickname") or get(target, "author.user.username") \
                    or get(payload, "actor.nickname") or get(payload, "actor.username")
                raw = text(get(target, "author.raw"))
                email = raw.rpartition("<")[2].rstrip(">") if "<" in raw else ""
                return from_ref(prefix + name, text(get(target, "hash")), message=text(get(target, "message")),
                                author=text(author), author_email=email)
            return Ignored("; ".join(reasons))
        if event in ("pullrequest:created", "pullrequest:updated"):
            number = get(payload, "pullrequest.id", required=True)
            if not isinstance(number, int):
                raise BadPayload("the payload's 'pullrequest.id' is not an integer")
            return Trigger(
                "pull_request", text(get(payload, "pullrequest.destination.branch.name", required=True)),
                text(get(payload, "pullrequest.source.commit.hash", required=True)),
                # Bitbucket Cloud publishes no pull-request refs: the head is fetched by commit.
                f"refs/heads/{text(get(payload, 'pullrequest.source.branch.name'))}",
                message=text(get(payload, "pullrequest.title")),
                author=text(get(payload, "pullrequest.author.nickname")), pr_number=number,
            )
        if event.startswith("pullrequest:"):
            return Ignored(f"{event}: only pullrequest:created and pullrequest:updated run")
        raise UnknownEvent(f"Bitbucket Cloud event {event!r} is not handled (repo:push, pullrequest:* are)")


class Server:
    EVENT_HEADER = EVENT_HEADER
    verify = staticmethod(verify)

    @staticmethod
    def delivery_id(headers) -> str:
        return headers.get("X-Request-Id", "")

    @staticmethod
    def parse(event: str, payload: Any) -> Trigger | Ping | Ignored:
        if event == "diagnostics:ping":
            return Ping()
        actor = text(get(payload, "actor.slug") or get(payload, "actor.name"))
        email = text(get(payload, "actor.emailAddress"))
        if event == "repo:refs_changed":
            reasons = []
            for change in _one_change(get(payload, "changes", required=True)):
                ref = text(get(change, "ref.id") or get(change, "refId"))
                if text(get(change, "type")) == "DELETE":
                    reasons.append(f"{ref} was deleted")
                    continue
                return from_ref(ref, text(get(change, "toHash")), author=actor, author_email=email)
            return Ignored("; ".join(reasons))
        if event in ("pr:opened", "pr:from_ref_updated"):
            number = get(payload, "pullRequest.id", required=True)
            if not isinstance(number, int):
                raise BadPayload("the payload's 'pullRequest.id' is not an integer")
            return Trigger(
                "pull_request", text(get(payload, "pullRequest.toRef.displayId", required=True)),
                text(get(payload, "pullRequest.fromRef.latestCommit", required=True)),
                f"refs/pull-requests/{number}/from",
                message=text(get(payload, "pullRequest.title")), author=actor, author_email=email,
                pr_number=number,
            )
        if event.startswith("pr:"):
            return Ignored(f"{event}: only pr:opened and pr:from_ref_updated run")
        raise UnknownEvent(f"Bitbucket Server event {event!r} is not handled (repo:refs_changed, pr:* are)")
