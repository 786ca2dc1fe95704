"""A stateful in-memory Kubernetes API server on loopback, for driving the REAL `kubernetes` client.

It speaks the REST paths Slipway uses: discovery (`/api/v1`, `/apis/G/V`),
collections and objects of the resources in RESOURCES, namespaced and
cluster-scoped, with GET (read, list, `labelSelector` of `k=v,...`), POST
(create, 409 AlreadyExists), DELETE of one object or of a collection by `labelSelector`, PATCH (strategic / merge patches applied as a
JSON merge patch; server-side apply `application/apply-patch+yaml` creates or
merges and records the `fieldManager`; a `metadata.resourceVersion` in a
patch must match, else 409 Conflict), PUT and DELETE. Every object gets a
uid, a creationTimestamp and a resourceVersion that grows with each write.
`writes` records each write (method, path) so tests can prove that a second
reconcile makes none; `objects` is the store, which tests may change to
simulate drift. Nothing is validated here: schema checks are kubernetes-validate's job.
"""
from __future__ import annotations

import contextlib
import copy
import itertools
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import yaml

# (apiVersion, kind, plural, namespaced)
RESOURCES = [
    ("v1", "Namespace", "namespaces", False),
    ("v1", "Secret", "secrets", True),
    ("v1", "ServiceAccount", "serviceaccounts", True),
    ("v1", "Service", "services", True),
    ("v1", "ConfigMap", "configmaps", True),
    ("v1", "Pod", "pods", True),
    ("apps/v1", "Deployment", "deployments", True),
    ("apps/v1", "DaemonSet", "daemonsets", True),
    ("apps/v1", "StatefulSet", "statefulsets", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", False),
    ("networking.k8s.io/v1", "Ingress", "ingresses", True),
    ("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", True),
]
BY_PLURAL = {(gv, plural): (kind, namespaced) for gv, kind, plural, namespaced in RESOURCES}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: dicts merge recursively, null deletes, anything else (lists included) replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "reason": reason, "message": message, "code": code}


@dataclass
class FakeKube:
    url: str = ""
    # (apiVersion, plural, namespace or "", name) -> object
    objects: dict[tuple[str, str, str, str], dict[str, Any]] = field(default_factory=dict)
    writes: list[tuple[str, str]] = field(default_factory=list)
    managers: list[str] = field(default_factory=list)   # fieldManager of each server-side apply
    lock: threading.Lock = field(default_factory=threading.Lock)
    _version: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def get(self, api_version: str, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((api_version, plural, namespace, name))

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects.values() if o["kind"] == kind]

    # -- the HTTP side ---------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        url = urlparse(raw_path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        parts = [p for p in url.path.split("/") if p]
        if parts[:1] == ["api"]:
            gv, rest = (parts[1] if len(parts) > 1 else ""), parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            gv, rest = f"{parts[1]}/{parts[2]}", parts[3:]
        else:
            return 404, _status(404, "NotFound", f"no route {url.path}")
        if not rest:
            if method != "GET":
                return 405, _status(405, "MethodNotAllowed", url.path)
            return 200, self._discovery(gv)
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        plural, name = rest[0], (rest[1] if len(rest) > 1 else "")
        if (gv, plural) not in BY_PLURAL:
            return 404, _status(404, "NotFound", f"the server could not find the requested resource {plural}")
        kind, _namespaced = BY_PLURAL[(gv, plural)]
        with self.lock:
            if method != "GET":
                self.writes.append((method, url.path))
            return self._do(method, gv, kind, plural, namespace, name, query, headers, body)

    def _discovery(self, gv: str) -> dict[str, Any]:
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": [
            {"name": plural, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind,
             "verbs": ["create", "delete", "get", "list", "patch", "update"]}
            for v, kind, plural, namespaced in RESOURCES if v == gv]}

    def _stamp(self, obj: dict[str, Any], *, new: bool) -> None:
        meta = obj.setdefault("metadata", {})
        if new:
            meta["uid"] = f"uid-{next(self._version)}"
            meta["creationTimestamp"] = "2026-01-01T00:00:00Z"
        meta["resourceVersion"] = str(next(self._version))

    def _do(self, method, gv, kind, plural, namespace, name, query, headers, body):
        key = (gv, plural, namespace, name)
        live = self.objects.get(key)
        if method == "GET" and not name:
            wanted = dict(p.split("=", 1) for p in query.get("labelSelector", "").split(",") if p)
            items = [copy.deepcopy(o) for (v, pl, ns, _n), o in sorted(self.objects.items())
                     if v == gv and pl == plural and (not namespace or ns == namespace)
                     and all((o["metadata"].get("labels") or {}).get(k) == val for k, val in wanted.items())]
            return 200, {"kind": kind + "List", "apiVersion": gv, "metadata": {"resourceVersion": "1"},
                         "items": items}
        if method == "GET":
            return (200, copy.deepcopy(live)) if live else (404, _status(404, "NotFound", f"{plural} {name!r} not found"))
        if method == "POST":
            obj = json.loads(body)
            name = obj["metadata"]["name"]
            key = (gv, plural, namespace, name)
            if key in self.objects:
                return 409, _status(409, "AlreadyExists", f"{plural} {name!r} already exists")
            if namespace:
                obj["metadata"]["namespace"] = namespace
            self._stamp(obj, new=True)
            self.objects[key] = obj
            return 201, copy.deepcopy(obj)
        if method == "DELETE" and not name:  # deletecollection: every object the labelSelector matches
            wanted = dict(p.split("=", 1) for p in query.get("labelSelector", "").split(",") if p)
            gone = [k for k, o in sorted(self.objects.items())
                    if k[0] == gv and k[1] == plural and (not namespace or k[2] == namespace)
                    and all((o["metadata"].get("labels") or {}).get(lk) == lv for lk, lv in wanted.items())]
            items = [self.objects.pop(k) for k in gone]
            return 200, {"kind": kind + "List", "apiVersion": gv, "metadata": {"resourceVersion": "1"},
                         "items": items}
        if method == "DELETE":
            if live is None:
                return 404, _status(404, "NotFound", f"{plural} {name!r} not found")
            del self.objects[key]
            return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success", "metadata": {}}
        if method in ("PATCH", "PUT"):
            content_type = headers.get("Content-Type", "")
            patch = yaml.safe_load(body) if content_type == "application/apply-patch+yaml" else json.loads(body)
            if content_type == "application/apply-patch+yaml":
                self.managers.append(query.get("fieldManager", ""))
                if live is None:
                    obj = dict(patch)
                    obj.setdefault("metadata", {})["name"] = name
                    if namespace:
                        obj["metadata"]["namespace"] = namespace
                    self._stamp(obj, new=True)
                    self.objects[key] = obj
                    return 201, copy.deepcopy(obj)
            if live is None:
                return 404, _status(404, "NotFound", f"{plural} {name!r} not found")
            wanted_version = (patch.get("metadata") or {}).get("resourceVersion")
            if wanted_version and wanted_version != live["metadata"].get("resourceVersion"):
                return 409, _status(409, "Conflict", f"{plural} {name!r}: the object has been modified")
            obj = patch if method == "PUT" else merge_patch(live, patch)
            obj["metadata"]["uid"] = live["metadata"]["uid"]
            obj["metadata"]["creationTimestamp"] = live["metadata"]["creationTimestamp"]
            self._stamp(obj, new=False)
            self.objects[key] = obj
            return 200, copy.deepcopy(obj)
        return 405, _status(405, "MethodNotAllowed", method)


@contextlib.contextmanager
def fake_kube() -> Iterator[FakeKube]:
    """Serve a FakeKube on 127.0.0.1 (a free port) for the length of the block."""
    state = FakeKube()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def _any(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            code, payload = state.handle(self.command, self.path, self.headers, body)
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def kubeconfig_for(url: str, namespace: str = "default") -> str:
    """A kubeconfig (YAML text) that points at `url` with a bearer token."""
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": url}}],
        "users": [{"name": "fake", "user": {"token": "fake-token"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": namespace}}],
    })
