"""Project notifiers (README *Notifications*): validation shared by the API and the settings page, CRD rendering.

A notifier's write shape is `{name, kind, config: {field: value}}`; which
fields a kind has, and which are secret, is the kind's own (`fields` in
devops/notifications/). Secret fields (a webhook URL, an HMAC key) are
stored encrypted (`Notifier.secrets`) and are write-only: responses list
only their names under `spec.secretFields`. On update a secret field left
out keeps its value; "" clears it.
"""
from __future__ import annotations

import re
from typing import Any

from django.conf import settings

from devops.api.crd import API_VERSION, rfc3339
from devops.models import NotificationDelivery, Notifier, Project
from devops.notifications.kinds import NOTIFIERS

NAME = re.compile(r"^[a-z0-9]([-a-z0-9_.]{0,61}[a-z0-9])?$")
MAX_VALUE = 4096


class NotifierInvalid(ValueError):
    """`errors`: {"name": [...], "kind": [...], "config": {"url": [...]}} (DRF's nested shape)."""

    def __init__(self, errors: dict[str, Any]):
        super().__init__("invalid notifier")
        self.errors = errors


def kind_class(kind: str):
    return NOTIFIERS.load(kind)


def apply(project: Project, data: dict[str, Any], notifier: Notifier | None = None) -> Notifier:
    """Validate `data` and create (notifier None) or update a Notifier; raises NotifierInvalid.

    On update, `kind` may be left out; given a different kind, the old
    configuration is dropped (its fields mean nothing to the new kind).
    """
    errors: dict[str, Any] = {}
    if not isinstance(data, dict):
        raise NotifierInvalid({"non_field_errors": ["expected an object: name, kind, config"]})
    name = data.get("name", notifier.name if notifier else None)
    if not isinstance(name, str) or not NAME.match(name):
        errors["name"] = ["lowercase letters, digits, '-', '_' and '.', starting and ending with a letter or "
                          "digit, at most 63 characters (the file's `recipients[].notifier` names it)"]
    elif notifier is None or name != notifier.name:
        if Notifier.objects.filter(project=project, name=name).exists():
            errors["name"] = [f"a notifier named {name!r} exists in this project"]
    kind = data.get("kind", notifier.kind if notifier else None)
    if kind not in NOTIFIERS:
        errors["kind"] = [f"one of {', '.join(NOTIFIERS.names())}"]
    config = data.get("config", {})
    if not isinstance(config, dict) or not all(isinstance(v, str) for v in config.values()):
        errors["config"] = ["an object of field: string value"]
    if errors:
        raise NotifierInvalid(errors)
    cls = kind_class(kind)
    secret_names = set(cls.secret_fields())
    too_long = {k: [f"at most {MAX_VALUE} characters"] for k, v in config.items() if len(v) > MAX_VALUE}
    if too_long:
        raise NotifierInvalid({"config": too_long})
    same_kind = notifier is not None and notifier.kind == kind
    old_plain = dict(notifier.config or {}) if same_kind else {}
    old_secret = dict(notifier.secrets or {}) if same_kind and isinstance(notifier.secrets, dict) else {}
    plain = {**old_plain, **{k: v.strip() for k, v in config.items() if k not in secret_names}}
    secret = {**old_secret, **{k: v.strip() for k, v in config.items() if k in secret_names}}
    plain = {k: v for k, v in plain.items() if v}
    secret = {k: v for k, v in secret.items() if v}
    problems = cls.check({**plain, **secret}, allow_private=settings.SLIPWAY_NOTIFY_ALLOW_PRIVATE)
    if problems:
        raise NotifierInvalid({"config": {k: [v] for k, v in problems.items()}})
    if notifier is None:
        notifier = Notifier(project=project)
    notifier.name, notifier.kind, notifier.config, notifier.secrets = name, kind, plain, secret
    notifier.save()
    return notifier


def render(obj: Notifier) -> dict[str, Any]:
    """CRD shape; secret values never appear (names of the set secret fields only)."""
    try:
        secret_fields = sorted(obj.secrets or {})
        error = None
    except ValueError as exc:  # stored under another SLIPWAY_ENCRYPTION_KEY
        secret_fields, error = [], str(exc)
    status: dict[str, Any] = {"updated": rfc3339(obj.updated)}
    if error:
        status["error"] = error
    return {
        "apiVersion": API_VERSION, "kind": "Notifier",
        "metadata": {"name": obj.name, "namespace": obj.project_id, "labels": {},
                     "creationTimestamp": rfc3339(obj.created)},
        "spec": {"kind": obj.kind, "config": dict(obj.config or {}), "secretFields": secret_fields},
        "status": status,
    }


def render_delivery(d: NotificationDelivery) -> dict[str, Any]:
    return {
        "index": d.index, "notifier": d.notifier_name, "kind": d.kind, "recipient": d.recipient,
        "state": d.state, "attempts": d.attempts, "outcome": d.outcome, "error": d.error,
        "nextAttemptAt": rfc3339(d.next_attempt_at), "sentAt": rfc3339(d.sent_at),
        "created": rfc3339(d.created),
    }


def kinds_help() -> list[dict[str, Any]]:
    """Each kind's fields, for the page's form and the API's description."""
    out = []
    for kind in NOTIFIERS:
        cls = NOTIFIERS.load(kind.name)
        out.append({"name": kind.name, "label": kind.label,
                    "fields": [{"name": f.name, "label": f.label, "secret": f.secret, "required": f.required,
                                "help": f.help} for f in cls.fields]})
    return out
