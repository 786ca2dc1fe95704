"""Reconcile a project's data plane against the cluster: create, adopt, repair drift, prune bindings.

`reconcile(spec, api)` is idempotent: a second call against an unchanged
cluster reads and writes nothing new (every object is `unchanged`). Per object:
read; absent -> create (a 409 from a concurrent creator -> read it back);
present -> patch with Slipway's fields when the live object does not carry
them all (`covers`: fields the server added, such as defaults and status, are
not drift; a changed replica count or image is). Secrets are create-only: their
values are generated once (`Material`) and read back, never rotated by a
reconcile. The shared `proxy-mappings` ConfigMap gains this project's entry
and keeps every other project's (the patch carries the resourceVersion read,
so a concurrent writer makes it fail and the next reconcile retries).
RoleBindings `pipeline-jenkins` labelled with the project that sit in a
namespace no longer in the project are deleted (Rancher's reconcileRb).
"""
from __future__ import annotations

import base64
import hashlib
import secrets as random
from dataclasses import dataclass, field
from typing import Any

import yaml
from kubernetes.client import ApiClient

from devops.dataplane import certs
from devops.dataplane import names as n
from devops.dataplane.client import AlreadyExists, KubeAPI
from devops.dataplane.objects import (
    Material,
    desired_objects,
    htpasswd,
    project_namespaces,
    registry_dns_names,
)
from devops.engines.base import ProjectSpec

_serializer = ApiClient()


def plain(obj: Any) -> dict[str, Any]:
    """A kubernetes model as the JSON the API server sees (None fields dropped)."""
    return _serializer.sanitize_for_serialization(obj)  # type: ignore[no-any-return]


@dataclass
class ReconcileResult:
    created: list[str] = field(default_factory=list)
    patched: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def writes(self) -> int:
        return len(self.created) + len(self.patched) + len(self.deleted)


def covers(live: Any, want: Any) -> bool:
    """True when `live` holds every field of `want` with the same value (lists: same length, in order)."""
    if isinstance(want, dict):
        return isinstance(live, dict) and all(key in live and covers(live[key], v) for key, v in want.items())
    if isinstance(want, list):
        return isinstance(live, list) and len(live) == len(want) and all(map(covers, live, want))
    return bool(live == want)


def ref(body: dict[str, Any]) -> str:
    meta = body["metadata"]
    return f"{body['kind']} {meta.get('namespace') + '/' if meta.get('namespace') else ''}{meta['name']}"


def _secret_data(api: KubeAPI, namespace: str, name: str) -> dict[str, str] | None:
    live = api.read("Secret", namespace, name)
    if live is None:
        return None
    return {key: base64.b64decode(v).decode() for key, v in (live.get("data") or {}).items()}


def read_mappings(api: KubeAPI) -> tuple[dict[str, int], str | None]:
    """The registry proxy's port map (project id -> node port) and the ConfigMap's resourceVersion."""
    live = api.read("ConfigMap", n.COMMON_NAMESPACE, n.PROXY_MAPPINGS)
    if live is None:
        return {}, None
    parsed = yaml.safe_load((live.get("data") or {}).get(n.MAPPINGS_KEY) or "") or {}
    return {str(pid): int(port) for pid, port in parsed.items()}, live["metadata"].get("resourceVersion")


def pick_port(project_id: str, taken: set[int]) -> int:
    """A free port of PORT_RANGE; the first try is derived from the project id, so renders agree."""
    low, high = n.PORT_RANGE
    start = int(hashlib.sha256(project_id.encode()).hexdigest(), 16) % (high - low)
    for i in range(high - low):
        port = low + (start + i) % (high - low)
        if port not in taken:
            return port
    raise RuntimeError(f"no free registry proxy port in {low}-{high - 1}")


def material(spec: ProjectSpec, api: KubeAPI, mappings: dict[str, int]) -> Material:
    """What the cluster already holds for the project; what is missing is generated now."""
    pipeline = _secret_data(api, spec.namespace, n.PIPELINE_SECRET) or {}
    token = pipeline.get(n.SECRET_TOKEN_KEY) or random.token_urlsafe(24)
    api_key = (_secret_data(api, spec.namespace, n.API_KEY_SECRET) or {}).get(n.API_KEY_KEY) or random.token_urlsafe(32)
    ca_data = _secret_data(api, n.COMMON_NAMESPACE, n.REGISTRY_CA_KEY_SECRET) or {}
    ca = certs.KeyPair(ca_data[n.CA_CRT], ca_data[n.CA_KEY]) if ca_data.get(n.CA_KEY) else certs.new_ca()
    crt_data = _secret_data(api, spec.namespace, n.REGISTRY_CRT_SECRET) or {}
    crt = (certs.KeyPair(crt_data[n.CRT], crt_data[n.KEY]) if crt_data.get(n.KEY)
           else certs.serving_cert(ca, n.REGISTRY, registry_dns_names(spec.namespace)))
    port = mappings.get(spec.project_id) or pick_port(spec.project_id, set(mappings.values()))
    return Material(token=token, api_key=api_key,
                    registry_htpasswd=pipeline.get(n.SECRET_REGISTRY_TOKEN_KEY) or htpasswd(token),
                    ca=ca, crt=crt, registry_port=port)


def ensure(api: KubeAPI, body: dict[str, Any], result: ReconcileResult, *, create_only: bool = False) -> None:
    kind, meta = body["kind"], body["metadata"]
    namespace, name = meta.get("namespace"), meta["name"]
    live = api.read(kind, namespace, name)
    if live is None:
        try:
            api.create(kind, namespace, body)
            result.created.append(ref(body))
            return
        except AlreadyExists:
            live = api.read(kind, namespace, name)
    if live is None or create_only or covers(live, body):
        result.unchanged.append(ref(body))
        return
    api.patch(kind, namespace, name, body)
    result.patched.append(ref(body))


def reconcile(spec: ProjectSpec, api: KubeAPI) -> ReconcileResult:
    """Make the cluster hold the project's data plane; see the module docstring."""
    result = ReconcileResult()
    mappings, version = read_mappings(api)
    m = material(spec, api, mappings)
    for obj in desired_objects(spec, m, mappings):
        body = plain(obj)
        if body["kind"] == "ConfigMap" and version is not None:
            body["metadata"]["resourceVersion"] = version
        ensure(api, body, result, create_only=body["kind"] == "Secret")
    wanted = set(project_namespaces(spec))
    selector = f"{n.PROJECT_LABEL}={spec.project_id},app.kubernetes.io/managed-by=slipway"
    for rb in api.list_all("RoleBinding", selector):
        meta = rb["metadata"]
        if meta["name"] == n.ROLE_BINDING and meta.get("namespace") not in wanted:
            api.delete("RoleBinding", meta["namespace"], meta["name"])
            result.deleted.append(ref({"kind": "RoleBinding", "metadata": meta}))
    return result


def render(spec: ProjectSpec) -> str:
    """The project's data plane as multi-document YAML, secret values left out (`apply` generates them)."""
    hidden = "(generated by dataplane apply)"
    m = Material(token=hidden, api_key=hidden, registry_htpasswd=hidden,
                 ca=certs.KeyPair(hidden, hidden), crt=certs.KeyPair(hidden, hidden),
                 registry_port=pick_port(spec.project_id, set()))
    docs = []
    for obj in desired_objects(spec, m):
        body = plain(obj)
        if body["kind"] == "Secret":
            body["data"] = {key: "" for key in body["data"]}
        docs.append(body)
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)
