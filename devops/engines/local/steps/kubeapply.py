"""applyYamlConfig: server-side apply of a YAML file or inline content to the deploy target.

The text (file `path` in the workspace, or `content`) has `${CICD_*}`
replaced from the step's environment — which holds CICD_IMAGE /
CICD_REGISTRY / CICD_IMAGE_REPO of the nearest earlier publish step — then
each document is applied with `PATCH ...?fieldManager=slipway&force=true`,
`Content-Type: application/apply-patch+yaml`, through the `kubernetes`
client's ApiClient. The resource path of each kind comes from the API
server's discovery document of its apiVersion (one GET per apiVersion), so
any kind the cluster serves can be applied, custom resources included.
Namespaced objects without a namespace go to the step's `namespace`, else
the deploy target's. Documents are applied in order; the first refusal
fails the step, and the log says which objects were applied before it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from devops.engines.local.context import StepResult
from devops.pipeline.substitute import substitute_text

if TYPE_CHECKING:
    from devops.engines.local.context import StepContext

FIELD_MANAGER = "slipway"
REQUEST_TIMEOUT = 30  # seconds per API call


class ApplyError(Exception):
    pass


def read_text(ctx: StepContext) -> str:
    cfg = ctx.config.type
    if cfg.content:  # type: ignore[union-attr]
        return cfg.content  # type: ignore[union-attr]
    if not cfg.path:  # type: ignore[union-attr]
        raise ApplyError("applyYamlConfig needs `path` (a file in the repository) or `content`")
    root = ctx.workspace.resolve()
    path = (root / cfg.path).resolve()  # type: ignore[union-attr]
    if not path.is_relative_to(root):
        raise ApplyError(f"{cfg.path} is outside the workspace")  # type: ignore[union-attr]
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ApplyError(f"cannot read {cfg.path}: {getattr(exc, 'strerror', None) or exc}") from None  # type: ignore[union-attr]


def documents(text: str) -> list[dict[str, Any]]:
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise ApplyError(f"the manifest is not valid YAML: {exc}") from None
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict) or not doc.get("apiVersion") or not doc.get("kind") \
                or not (doc.get("metadata") or {}).get("name"):
            raise ApplyError(f"document {i + 1} needs apiVersion, kind and metadata.name")
    if not docs:
        raise ApplyError("the manifest holds no object")
    return docs


class Applier:
    """Server-side apply through one ApiClient, with the discovery documents it needed cached."""

    def __init__(self, api_client: Any):
        self.api = api_client
        self.resources: dict[str, dict[str, tuple[str, bool]]] = {}

    def _call(self, method: str, path: str, **kw: Any) -> tuple[Any, int]:
        data, status, _headers = self.api.call_api(
            path, method, response_type="object", auth_settings=["BearerToken"],
            _return_http_data_only=False, _request_timeout=REQUEST_TIMEOUT, **kw)
        return data, status

    def resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        """(path prefix of the collection's group version, plural, namespaced) from discovery."""
        if api_version not in self.resources:
            from kubernetes.client.exceptions import ApiException

            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            try:
                data, _ = self._call("GET", base, header_params={"Accept": "application/json"})
            except ApiException as exc:
                if exc.status == 404:
                    raise ApplyError(f"the cluster serves no apiVersion {api_version}") from None
                raise
            self.resources[api_version] = {
                r["kind"]: (r["name"], bool(r.get("namespaced"))) for r in data.get("resources", [])
                if "/" not in r["name"]}
        found = self.resources[api_version].get(kind)
        if found is None:
            raise ApplyError(f"the cluster serves no kind {kind} in {api_version}")
        return found

    def apply(self, doc: dict[str, Any], namespace: str) -> str:
        api_version, kind, name = doc["apiVersion"], doc["kind"], doc["metadata"]["name"]
        plural, namespaced = self.resource(api_version, kind)
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        where = ""
        if namespaced:
            ns = doc["metadata"].get("namespace") or namespace
            doc = {**doc, "metadata": {**doc["metadata"], "namespace": ns}}
            where, base = f"{ns}/", f"{base}/namespaces/{ns}"
        _data, status = self._call(
            "PATCH", f"{base}/{plural}/{name}", body=doc,
            query_params=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            header_params={"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"})
        return f"{kind} {where}{name} {'created' if status == 201 else 'configured'}"


def _refusal(exc: Any) -> str:
    import json

    try:
        message = json.loads(exc.body).get("message") or exc.reason
    except (TypeError, ValueError, AttributeError):
        message = exc.reason
    return f"{exc.status} {message}"


def run(ctx: StepContext) -> StepResult:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    from devops.dataplane.client import load_api_client

    namespace = ctx.config.type.namespace or ctx.spec.deploy_namespace or "default"  # type: ignore[union-attr]
    applied = 0
    try:
        docs = documents(substitute_text(read_text(ctx), ctx.env))
        try:
            applier = Applier(load_api_client(text=ctx.spec.deploy_kubeconfig))
        except ValueError as exc:
            raise ApplyError(f"the deploy target's kubeconfig is refused: {exc}") from None
        ctx.say(f"applying {len(docs)} object(s) with server-side apply (field manager {FIELD_MANAGER}), "
                f"default namespace {namespace}")
        for doc in docs:
            if ctx.cancelled.is_set():
                raise ApplyError("stopped")
            ctx.say(applier.apply(doc, namespace))
            applied += 1
    except ApplyError as exc:
        msg = str(exc) if not applied else f"{exc} (after {applied} object(s) were applied)"
        ctx.say(msg)
        return StepResult(1, msg)
    except ApiException as exc:
        msg = f"the API server refused: {_refusal(exc)}" + (f" (after {applied} object(s))" if applied else "")
        ctx.say(msg)
        return StepResult(1, msg)
    except HTTPError as exc:
        msg = f"cannot reach the deploy target's API server: {exc.__class__.__name__}"
        ctx.say(msg)
        return StepResult(1, msg)
    return StepResult(0)
