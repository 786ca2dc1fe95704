"""Slack-compatible incoming webhooks: POST `{"text": ...}` (Slack, Mattermost, Rocket.Chat).

A `recipient` from the pipeline file (`#channel` or `@user`) goes in
`channel`: Mattermost and Rocket.Chat honour it; Slack's app webhooks post to
their own channel and ignore it. The URL is the secret (whoever has it may
post), stored encrypted and never shown again.

The text is escaped as Slack's message formatting asks (`&`, `<`, `>`):
a commit message or branch name comes from whoever pushed (a pull request's
author included), and unescaped `<!channel>` would ping the whole channel and
`<https://...|docs>` show a link whose target the reader cannot see.
"""
from __future__ import annotations

import json
from typing import ClassVar

from devops.notifications.base import Field, Message, SendOptions
from devops.notifications.safehttp import HTTPNotifier, post_json


def slack_escape(text: str) -> str:
    """`text` as literal text in Slack's (and Mattermost's) message formatting."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackNotifier(HTTPNotifier):
    fields: ClassVar = (
        Field("url", "Incoming webhook URL", secret=True, required=True,
              help="https://hooks.slack.com/services/..., or a Mattermost/Rocket.Chat incoming webhook"),
    )

    @staticmethod
    def body(recipient: str, message: Message) -> bytes:
        data = {"text": slack_escape(message.text)}
        if recipient.strip():
            data["channel"] = recipient.strip()
        return json.dumps(data, separators=(",", ":")).encode()

    def send(self, config: dict[str, str], recipient: str, message: Message, options: SendOptions) -> str:
        return post_json(config["url"], self.body(recipient, message), {}, options)
