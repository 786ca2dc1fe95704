"""Every receiver is a row of its kind table, and every row's receiver keeps the contract."""
from __future__ import annotations

import inspect

from devops.kinds import import_dotted
from devops.scm.providers import PROVIDERS
from devops.triggers.image_webhooks import IMAGE_WEBHOOKS


def test_each_provider_row_names_a_receiver_with_the_contract():
    rows = [k for k in PROVIDERS if k.webhook]
    assert {k.name for k in rows} == {"github", "gitlab", "bitbucketcloud", "bitbucketserver", "gitea", "gogs"}
    for kind in rows:
        receiver = import_dotted(kind.webhook)
        assert isinstance(receiver.EVENT_HEADER, str) and receiver.EVENT_HEADER.startswith("X-")
        for name in ("delivery_id", "verify", "parse"):
            assert callable(getattr(receiver, name)), (kind.name, name)
        assert list(inspect.signature(receiver.verify).parameters) == ["headers", "body", "secret"]


def test_each_external_image_type_has_a_parser():
    for kind in IMAGE_WEBHOOKS:
        module = IMAGE_WEBHOOKS.load(kind.name)
        assert callable(getattr(module, "parse" if kind.name != "builtin" else "registry_notifications"))
