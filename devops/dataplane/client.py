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


# What a kubeconfig stored by a project may hold for its user: inline credentials only. `exec` and
# `auth-provider` would run a program on Slipway's machine, and `*-file` / path fields would read
# its files, with the rights of Slipway itself.
INLINE_USER_FIELDS = frozenset({"token", "client-certificate-data", "client-key-data", "username", "password"})
INLINE_CLUSTER_FIELDS = frozenset({"server", "certificate-authority-data", "insecure-skip-tls-verify",
                                   "tls-server-name", "proxy-url"})


def check_kubeconfig(text: str) -> dict[str, Any]:
    """The parsed kubeconfig when it holds only inline credentials; ValueError saying what it may not hold."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"the kubeconfig is not YAML ({exc.__class__.__name__})") from None
    if not isinstance(data, dict) or not data.get("clusters") or not data.get("contexts"):
        raise ValueError("the kubeconfig has no clusters or contexts")
    for section, key, allowed in (("users", "user", INLINE_USER_FIELDS), ("clusters", "cluster", INLINE_CLUSTER_FIELDS)):
        for entry in data.get(section) or []:
            extra = sorted(set((entry or {}).get(key) or {}) - allowed)
            if extra:
                raise ValueError(f"the kubeconfig's {section[:-1]} {entry.get('name')!r} uses {', '.join(extra)}: "
                                 f"only inline credentials ({', '.join(sorted(allowed))}) are accepted")
    return data


def kubeconfig_secrets(text: str) -> list[str]:
    """The credential values of a kubeconfig, to mask in logs (empty when it does not parse)."""
    try:
        data = check_kubeconfig(text)
    except ValueError:
        return []
    return [str(v) for entry in data.get("users") or [] for key, v in ((entry or {}).get("user") or {}).items()
            if key in ("token", "client-key-data", "password") and v]


def load_api_client(kubeconfig: str | None = None, *, text: str | None = None) -> k.ApiClient:
    """An ApiClient for the kubeconfig file `kubeconfig` (the operator's: its current context), or the
    kubeconfig `text` (a project's deploy target: `check_kubeconfig` first, ValueError when refused).

    With neither, the in-cluster service account (a Slipway pod on the cluster).
    """
    from kubernetes import config

    configuration = k.Configuration()
    if text is not None:  # a project's: inline credentials only
        config.load_kube_config_from_dict(check_kubeconfig(text), client_configuration=configuration)
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
