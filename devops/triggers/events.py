"""What a webhook says, as plain data: the receivers' common vocabulary. Django-free.

A provider's receiver module (devops/triggers/hooks/<provider>.py, named by
its row in `devops.scm.providers.PROVIDERS`) exposes:

    EVENT_HEADER: str                            the header naming the event
    delivery_id(headers) -> str                  the sender's id of this delivery ("" if none)
    verify(headers, body: bytes, secret) -> bool the provider's authentication, constant time
    parse(event: str, payload) -> Trigger | Ping | Ignored
                                                 raises UnknownEvent / BadPayload

`headers` is a case-insensitive mapping (Django's request.headers).
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

ZERO_SHA = "0" * 40


@dataclass(frozen=True)
class Trigger:
    """A run to start: `do_run(branch, ref, commit, event, message, author)`.

    event is push | tag | pull_request (the pipeline file's `when.event`
    names). For a pull/merge request `branch` is the TARGET branch (the
    pipeline file's `branch` constraint and `when` are about where the
    change goes, as in Rancher), `commit` the request's head commit and
    `ref` the provider's ref of that head (refs/pull/N/head, ...).
    """

    event: str
    branch: str
    commit: str
    ref: str
    message: str = ""
    author: str = ""
    author_email: str = ""
    pr_number: int | None = None


@dataclass(frozen=True)
class Ping:
    """The provider checks the hook (GitHub `ping`): answered, nothing runs."""


@dataclass(frozen=True)
class Ignored:
    """A known event that starts nothing (a deleted branch or tag, a closed PR); `reason` says why."""

    reason: str


class UnknownEvent(ValueError):
    """An event this receiver does not handle: answered 400, nothing recorded."""


class BadPayload(ValueError):
    """The JSON is valid but not the shape the event promises; the message names the field."""


def hmac_hex(secret: str, body: bytes, algo: str = "sha256") -> str:
    return hmac.new(secret.encode(), body, getattr(hashlib, algo)).hexdigest()


def signature_matches(given: str, secret: str, body: bytes, *, prefix: str = "sha256=") -> bool:
    """`given` == prefix + HMAC-SHA256(secret, body) hex, compared in constant time."""
    if not secret or not given:
        return False
    expected = prefix + hmac_hex(secret, body)
    return hmac.compare_digest(given.strip().lower().encode(), expected.encode())


def token_matches(given: str, secret: str) -> bool:
    """A shared token sent verbatim (GitLab), compared in constant time."""
    if not secret or not given:
        return False
    return hmac.compare_digest(given.encode(), secret.encode())


def get(payload: Any, path: str, default: Any = None, *, required: bool = False) -> Any:
    """`payload["a"]["b"]` for path "a.b"; BadPayload naming the path when required and absent."""
    cur = payload
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            if required:
                raise BadPayload(f"the payload has no {path!r}")
            return default
    if required and cur in (None, ""):
        raise BadPayload(f"the payload's {path!r} is empty")
    return cur


def text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def from_ref(ref: str, commit: str, *, message: str = "", author: str = "", author_email: str = "",
             deleted: bool = False) -> Trigger | Ignored:
    """A push of `ref` (refs/heads/B or refs/tags/T) to `commit`: a push or tag run, or Ignored."""
    if deleted or not commit or commit == ZERO_SHA:
        return Ignored(f"{ref} was deleted")
    if ref.startswith("refs/heads/"):
        return Trigger("push", ref[len("refs/heads/"):], commit, ref, message, author, author_email)
    if ref.startswith("refs/tags/"):
        # A tag run has no branch of its own: CICD_GIT_TAG is the tag; the
        # `branch` constraint sees the tag name (Rancher did the same).
        return Trigger("tag", ref[len("refs/tags/"):], commit, ref, message, author, author_email)
    return Ignored(f"{ref} is neither a branch nor a tag")
