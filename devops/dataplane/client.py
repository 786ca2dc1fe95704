"""The small API the reconcile needs, on plain JSON dicts, and its implementation with `kubernetes.client`.

`KubeAPI` is what `reconcile()` calls: read (None when absent), create
(`AlreadyExists` on 409), patch (a strategic merge patch of the fields Slipway
owns), delete, and list across namespaces by label. `KubernetesAPI` speaks to
a real API server through CoreV1Api / AppsV1Api / RbacAuthorizationV1Api; the
tests drive it against a stateful fake server on loopback.
"""
from __future__ import annotations

from typing import Any, Protocol

from kubernetes import client as k
from kubernetes.client.exceptions import ApiException


class AlreadyExists(Exception):
    pass


class KubeAPI(Protocol):
    def read(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None: ...
    def create(self, kind: str, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]: ...
    def patch(self, kind: str, namespace: str | None, name: str, body: dict[str, Any]) -> dict[str, Any]: ...
    def delete(self, kind: str, namespace: str | None, name: str) -> None: ...
    def list_all(self, kind: str, label_selector: str) -> list[dict[str, Any]]: ...


# kind -> (API class, method suffix, namespaced). Method names: read_namespaced_<suffix>, ...
KINDS: dict[str, tuple[type, str, bool]] = {
    "Namespace": (k.CoreV1Api, "namespace", False),
    "Secret": (k.CoreV1Api, "secret", True),
    "ServiceAccount": (k.CoreV1Api, "service_account", True),
    "Service": (k.CoreV1Api, "service", True),
    "ConfigMap": (k.CoreV1Api, "config_map", True),
    "Deployment": (k.AppsV1Api, "deployment", True),
    "DaemonSet": (k.AppsV1Api, "daemon_set", True),
    "RoleBinding": (k.RbacAuthorizationV1Api, "role_binding", True),
}


def load_api_client(kubeconfig: str | None = None, *, text: str | None = None) -> k.ApiClient:
    """An ApiClient for the kubeconfig file `kubeconfig` (its current context), or the kubeconfig `text`.

    With neither, the in-cluster service account (a Slipway pod on the cluster).
    """
    import yaml
    from kubernetes import config

    configuration = k.Configuration()
    if text is not None:
        config.load_kube_config_from_dict(yaml.safe_load(text), client_configuration=configuration)
    elif kubeconfig:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        config.load_incluster_config(client_configuration=configuration)
    return k.ApiClient(configuration)


class KubernetesAPI:
    """`KubeAPI` through the official client (the `kubernetes` package)."""

    def __init__(self, api_client: k.ApiClient):
        self.api_client = api_client

    def _call(self, verb: str, kind: str, namespace: str | None, **kw: Any) -> Any:
        api_class, suffix, namespaced = KINDS[kind]
        api = api_class(self.api_client)
        if namespaced:
            return getattr(api, f"{verb}_namespaced_{suffix}")(namespace=namespace, **kw)
        return getattr(api, f"{verb}_{suffix}")(**kw)

    def _plain(self, obj: Any) -> dict[str, Any]:
        return self.api_client.sanitize_for_serialization(obj)  # type: ignore[no-any-return]

    def read(self, kind, namespace, name):
        try:
            return self._plain(self._call("read", kind, namespace, name=name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def create(self, kind, namespace, body):
        try:
            return self._plain(self._call("create", kind, namespace, body=body))
        except ApiException as exc:
            if exc.status == 409:
                raise AlreadyExists(f"{kind} {namespace}/{body['metadata']['name']}") from None
            raise

    def patch(self, kind, namespace, name, body):
        # A dict body goes as application/strategic-merge-patch+json (kubernetes.client.rest).
        return self._plain(self._call("patch", kind, namespace, name=name, body=body))

    def delete(self, kind, namespace, name):
        try:
            self._call("delete", kind, namespace, name=name)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def list_all(self, kind, label_selector):
        api_class, suffix, namespaced = KINDS[kind]
        api = api_class(self.api_client)
        method = f"list_{suffix}_for_all_namespaces" if namespaced else f"list_{suffix}"
        result = getattr(api, method)(label_selector=label_selector)
        return [self._plain(item) for item in result.items]
