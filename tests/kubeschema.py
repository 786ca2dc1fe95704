"""Validate Kubernetes objects against the official schemas (kubernetes-validate, strict).

K8S_VERSION is the minor the installed `kubernetes` client (35.x) models; every object is also
checked against the newest minor kubernetes-validate ships (LATEST), so what Slipway generates is
valid for a current cluster too. kubernetes-validate ships strict schemas (unknown fields are errors).
"""
from __future__ import annotations

from typing import Any

import kubernetes_validate
from kubernetes.client import ApiClient

K8S_VERSION = "1.35.0"
LATEST = kubernetes_validate.utils.latest_version()


def problems(obj: Any) -> str:
    """'' when `obj` (a kubernetes model, or a plain dict as the API sees it) is valid, else why not."""
    data = obj if isinstance(obj, dict) else ApiClient().sanitize_for_serialization(obj)
    for version in dict.fromkeys((K8S_VERSION, LATEST)):
        try:
            kubernetes_validate.validate(data, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            meta = data.get("metadata") or {}
            return (f"{data.get('kind')} {meta.get('namespace', '')}/{meta.get('name')} (Kubernetes {version}): "
                    f"{exc.message} at {list(exc.path)}")
    return ""
