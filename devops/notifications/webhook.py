"""The generic webhook: POST the run's facts as JSON, optionally signed with HMAC-SHA256.

Body: `{"event": "execution.finished", "recipient": ..., "title": ...,
"text": ..., "execution": {facts}}` (compact JSON, UTF-8). Headers:
`X-Slipway-Event: execution.finished`, `X-Slipway-Delivery: <id>` (the
same id on every retry of one notification: the receiver's dedup key), and
with a `secret`, `X-Slipway-Signature-256: sha256=<hex HMAC-SHA256 of the
body>` (GitHub's scheme, so existing verifiers work).
"""
from __future__ import annotations

import hashlib
import hmac
import json
from typing import ClassVar

from devops.notifications.base import Field, Message, SendOptions
from devops.notifications.safehttp import HTTPNotifier, post_json

SIGNATURE_HEADER = "X-Slipway-Signature-256"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookNotifier(HTTPNotifier):
    fields: ClassVar = (
        Field("url", "URL", secret=True, required=True, help="http(s) URL the JSON is POSTed to"),
        Field("secret", "Signing secret", secret=True,
              help=f"optional; signs the body with HMAC-SHA256 in {SIGNATURE_HEADER}"),
    )
    @staticmethod
    def body(recipient: str, message: Message) -> bytes:
        data = {"event": "execution.finished", "recipient": recipient, "title": message.title,
                "text": message.text, "execution": message.facts}
        return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()

    def send(self, config: dict[str, str], recipient: str, message: Message, options: SendOptions) -> str:
        body = self.body(recipient, message)
        headers = {"X-Slipway-Event": "execution.finished"}
        if options.delivery_id:
            headers["X-Slipway-Delivery"] = options.delivery_id
        if config.get("secret"):
            headers[SIGNATURE_HEADER] = signature(config["secret"], body)
        return post_json(config["url"], body, headers, options)
