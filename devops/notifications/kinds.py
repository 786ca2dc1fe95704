"""The one table of notifier kinds (devops.kinds): name -> label -> dotted path.

`Notifier.kind` choices, the API's and the page's kind lists are built from
it; adding a kind is one row and one module (devops/notifications/base.py
states the contract). Django-free: the model imports this table.
"""
from __future__ import annotations

from devops.kinds import Kind, KindTable

NOTIFIERS: KindTable[Kind] = KindTable(
    "notifier kind",
    Kind("email", "E-mail", "devops.notifications.mail.EmailNotifier"),
    Kind("webhook", "Webhook (JSON POST)", "devops.notifications.webhook.WebhookNotifier"),
    Kind("slack", "Slack-compatible webhook", "devops.notifications.slack.SlackNotifier"),
)
