"""The notifier contract: plain data in (a `Message`, the notifier's config), an outcome or an error out.

A notifier kind (a row of `NOTIFIERS`, devops/notifications/kinds.py) is a
class with:

- `fields`: the `Field`s of its configuration. `secret` fields (a webhook
  URL, an HMAC key) are stored encrypted and are write-only in the API and
  the page; the others are returned as written.
- `check(config, allow_private=) -> {field: message}`: what is wrong with a
  configuration (empty when it may be saved). Pure: no network, no DNS (a
  URL's name is resolved and checked again at send time).
- `check_recipient(recipient) -> message | None`: whether a `recipient`
  of the pipeline file suits this kind (an e-mail address for `email`).
- `send(config, recipient, message, options) -> str`: deliver one message;
  returns a short outcome for the record ("HTTP 200", "accepted by SMTP").
  Raises `TemporaryFailure` when trying again later may work (5xx, 429,
  timeouts, refused connections, SMTP 4xx) and `PermanentFailure` when it
  cannot (4xx, a refused address, a bad configuration).

Senders never touch the database and never log a secret: they run in the
controller's worker threads with plain data (the controller reads the rows).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


class DeliveryFailure(Exception):
    """Base of the two outcomes a sender raises; the message is recorded (never holds a secret)."""


class TemporaryFailure(DeliveryFailure):
    """Worth retrying later (the receiver is down, slow, or says 5xx/429)."""


class PermanentFailure(DeliveryFailure):
    """Retrying cannot help (4xx, a refused address, a bad configuration)."""


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    secret: bool = False
    required: bool = False
    help: str = ""


@dataclass(frozen=True)
class Message:
    """What one notification says: a title (the e-mail subject), the text, and the run's facts."""

    title: str
    text: str
    facts: dict[str, Any] = field(default_factory=dict)  # JSON-able: the webhook body's `execution`


@dataclass(frozen=True)
class SendOptions:
    """Operator settings a sender obeys (read from Django settings by the controller)."""

    allow_private: bool = False  # SLIPWAY_NOTIFY_ALLOW_PRIVATE: webhooks may reach loopback/private addresses
    timeout: float = 10.0        # seconds, connect and each read
    max_response: int = 65536    # bytes of a response body read at most
    delivery_id: str = ""        # sent as X-Slipway-Delivery (the receiver's dedup key)


class Notifier:
    """Base of the notifier kinds (see the module docstring for the contract)."""

    fields: ClassVar[tuple[Field, ...]] = ()

    @classmethod
    def secret_fields(cls) -> tuple[str, ...]:
        return tuple(f.name for f in cls.fields if f.secret)

    @classmethod
    def check(cls, config: dict[str, str], *, allow_private: bool = False) -> dict[str, str]:
        errors: dict[str, str] = {}
        known = {f.name for f in cls.fields}
        for name in config:
            if name not in known:
                errors[name] = f"unknown field; this kind has: {', '.join(sorted(known)) or 'none'}"
        for f in cls.fields:
            if f.required and not str(config.get(f.name, "")).strip():
                errors[f.name] = "required"
        return errors

    @classmethod
    def check_recipient(cls, recipient: str) -> str | None:
        return None

    def send(self, config: dict[str, str], recipient: str, message: Message, options: SendOptions) -> str:
        raise NotImplementedError
