"""Slack text: a commit message (anyone who pushes writes it) stays text, never a mention or a hidden link."""
from __future__ import annotations

import json

from devops.notifications.base import Message
from devops.notifications.slack import SlackNotifier


def test_mentions_and_links_from_untrusted_text_are_escaped():
    text = "Commit message: <!channel> urgent: see <https://evil.example/login|the docs> & <@U123>"
    body = json.loads(SlackNotifier.body("#ci", Message(title="t", text=text, facts={})))
    assert body["text"] == ("Commit message: &lt;!channel&gt; urgent: see &lt;https://evil.example/login|the docs&gt;"
                            " &amp; &lt;@U123&gt;")
    assert body["channel"] == "#ci"
