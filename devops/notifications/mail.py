"""E-mail through Django's mail backend (EMAIL_BACKEND, EMAIL_HOST, ... from the environment).

`recipient` in the pipeline file is one address or several separated by
commas. The notifier's optional `from` overrides DEFAULT_FROM_EMAIL. The
body is text/plain (the message is text; nothing is rendered as HTML).

SMTP outcomes: a refused recipient or sender, or any 5xx, is permanent; a
4xx, a refused or dropped connection and a timeout are temporary.
"""
from __future__ import annotations

import smtplib
from typing import ClassVar

from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.validators import validate_email

from devops.notifications.base import (
    Field,
    Message,
    Notifier,
    PermanentFailure,
    SendOptions,
    TemporaryFailure,
)


def addresses(recipient: str) -> list[str]:
    return [a.strip() for a in recipient.split(",") if a.strip()]


class EmailNotifier(Notifier):
    fields: ClassVar = (
        Field("from", "From address", help="optional; DEFAULT_FROM_EMAIL (SLIPWAY_EMAIL_FROM) when empty"),
    )

    @classmethod
    def check(cls, config: dict[str, str], *, allow_private: bool = False) -> dict[str, str]:
        errors = super().check(config, allow_private=allow_private)
        sender = str(config.get("from", "")).strip()
        if sender and "from" not in errors:
            try:
                validate_email(sender)
            except ValidationError:
                errors["from"] = f"{sender!r} is not an e-mail address"
        return errors

    @classmethod
    def check_recipient(cls, recipient: str) -> str | None:
        found = addresses(recipient)
        if not found:
            return "an e-mail notifier needs a `recipient`: one address, or several separated by commas"
        for address in found:
            try:
                validate_email(address)
            except ValidationError:
                return f"{address!r} is not an e-mail address"
        return None

    def send(self, config: dict[str, str], recipient: str, message: Message, options: SendOptions) -> str:
        problem = self.check_recipient(recipient)
        if problem:
            raise PermanentFailure(problem)
        to = addresses(recipient)
        mail = EmailMessage(subject=message.title, body=message.text, from_email=config.get("from") or None, to=to,
                            headers={"X-Slipway-Delivery": options.delivery_id} if options.delivery_id else None)
        try:
            with get_connection(timeout=options.timeout) as conn:
                conn.send_messages([mail])
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentFailure(f"SMTP refused the recipients: {', '.join(exc.recipients)}") from None
        except smtplib.SMTPSenderRefused as exc:
            raise PermanentFailure(f"SMTP refused the sender {exc.sender}: {exc.smtp_code}") from None
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
            failure = TemporaryFailure if 400 <= exc.smtp_code < 500 else PermanentFailure
            raise failure(f"SMTP {exc.smtp_code}: {text}") from None
        except smtplib.SMTPServerDisconnected as exc:
            raise TemporaryFailure(f"SMTP: the server closed the connection: {exc}") from None
        except smtplib.SMTPException as exc:  # STARTTLS or AUTH unsupported, ...: configuration
            raise PermanentFailure(f"SMTP: {type(exc).__name__}: {exc}") from None
        except OSError as exc:  # refused, reset, timed out, unreachable (smtplib's errors are OSErrors too)
            raise TemporaryFailure(f"SMTP: {type(exc).__name__}: {exc}") from None
        return f"accepted for {len(to)} address{'es' if len(to) > 1 else ''}"
