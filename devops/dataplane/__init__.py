"""The jenkins engine's data plane: each project's Kubernetes objects, reconciled (DESIGN §5).

Entry points:
- `deploy(spec, kubeconfig)`: reconcile the project's data plane into the
  cluster of the kubeconfig file (None / "": the in-cluster service account);
  what the jenkins engine's `deploy()` and `manage.py dataplane apply` do.
- `reconcile.reconcile(spec, api)` / `reconcile.render(spec)`: the same
  against any `client.KubeAPI`, and the objects as YAML.
- `client.load_api_client(text=...)`: an ApiClient for a project's stored
  kubeconfig (inline credentials only), used by the local engine's deploy steps.

Django-free: it sees the engines' plain `ProjectSpec`, never models.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devops.dataplane.reconcile import ReconcileResult
    from devops.engines.base import ProjectSpec


def deploy(spec: ProjectSpec, kubeconfig: str | None = None) -> ReconcileResult:
    """Make the cluster hold `spec`'s data plane; idempotent (a second call writes nothing)."""
    from devops.dataplane.client import KubernetesAPI, load_api_client
    from devops.dataplane.reconcile import reconcile

    return reconcile(spec, KubernetesAPI(load_api_client(kubeconfig or None)))
