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


# The operator setting that lets a project's deploy target be this machine (README "Settings").
ALLOW_LOCAL_SETTING = "SLIPWAY_DEPLOY_ALLOW_LOCAL"


def local_targets_allowed() -> bool:
    """Read at each use, from the environment a step's runner inherits from its controller (the
    runner imports no Django; settings.py parses the same variable at start-up, so a typo stops it)."""
    import os

    return os.environ.get(ALLOW_LOCAL_SETTING, "").strip().lower() in ("1", "true", "yes", "on")


def _own_address(ip: str) -> bool:
    """Whether `ip` is an address of this machine: binding to it succeeds only then (no extra package)."""
    import socket

    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.bind((ip, 0))
        return True
    except OSError:
        return False


def local_address_refusal(url: str, what: str = "server") -> str | None:
    """Why the deploy target's `url` would reach this machine instead of a cluster, or None.

    A project's kubeconfig is written by a project member, and Slipway's own kubernetes client (or
    helm in the tools image) connects where it says: loopback, link-local (cloud metadata at
    169.254.169.254), unspecified (0.0.0.0 reaches loopback), this machine's own addresses or a
    unix socket would let that member talk to services of Slipway's host. Every address the name
    resolves to is checked. (A name re-resolved differently between this check and the connect —
    DNS rebinding — is not caught; an operator who fears it filters egress.)
    """
    import ipaddress
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(str(url).strip())
    if parts.scheme not in ("https", "http"):
        return f"its {what} {url!r} is not an https:// (or http://) URL"
    host = parts.hostname or ""
    if not host:
        return f"its {what} {url!r} names no host"
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError, UnicodeError):
        return f"its {what} host {host!r} does not resolve"
    for info in infos:
        raw = info[4][0].split("%", 1)[0]
        ip = ipaddress.ip_address(raw)
        mapped = getattr(ip, "ipv4_mapped", None)
        ip = mapped or ip
        if ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast:
            kind = ("loopback" if ip.is_loopback else "link-local" if ip.is_link_local
                    else "unspecified" if ip.is_unspecified else "multicast")
            return f"its {what} {host} is {ip}, a {kind} address of Slipway's own machine"
        if _own_address(str(ip)):
            return f"its {what} {host} is {ip}, an address of Slipway's own machine"
    return None


def check_target_addresses(data: dict[str, Any]) -> None:
    """ValueError when a cluster of the (parsed) kubeconfig points at this machine, unless allowed."""
    if local_targets_allowed():
        return
    for entry in data.get("clusters") or []:
        cluster = (entry or {}).get("cluster") or {}
        for field in ("server", "proxy-url"):
            if field == "proxy-url" and not cluster.get(field):
                continue
            why = local_address_refusal(cluster.get(field) or "", field)
            if why:
                raise ValueError(f"cluster {entry.get('name')!r}: {why}; deploy targets on Slipway's own machine "
                                 f"are refused unless the operator sets {ALLOW_LOCAL_SETTING}=1")


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
    kubeconfig `text` (a project's deploy target: `check_kubeconfig` and `check_target_addresses`
    first, ValueError saying why when refused).

    With neither, the in-cluster service account (a Slipway pod on the cluster).
    """
    from kubernetes import config

    configuration = k.Configuration()
    if text is not None:  # a project's: inline credentials only, and not pointing at this machine
        data = check_kubeconfig(text)
        check_target_addresses(data)
        config.load_kube_config_from_dict(data, client_configuration=configuration)
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
