"""deploy/kubernetes/: every manifest valid against the strict Kubernetes schema, and the
properties README "Running on Kubernetes" promises (probes, requests, node names, network policy)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.kubeschema import problems

ROOT = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"


def load(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((ROOT / name).read_text()) if d]


def every_object() -> list[dict]:
    names = load("kustomization.yaml")[0]["resources"] + ["secret.example.yaml"]
    return [doc for name in names for doc in load(name)]


def by_kind(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in every_object() if d["kind"] == kind}


def containers(workload: dict) -> list[dict]:
    return workload["spec"]["template"]["spec"]["containers"]


def test_kustomization_lists_every_manifest_but_the_secret_template():
    listed = set(load("kustomization.yaml")[0]["resources"])
    on_disk = {p.name for p in ROOT.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert listed == on_disk


@pytest.mark.parametrize("doc", every_object(), ids=lambda d: f"{d['kind']}-{d['metadata']['name']}")
def test_manifest_passes_the_strict_schema(doc):
    assert problems(doc) == ""


def test_workloads_have_requests_and_probes():
    workloads = {**by_kind("Deployment"), **by_kind("StatefulSet")}
    assert set(workloads) == {"web", "controller", "postgres", "redis", "minio"}
    for name, workload in workloads.items():
        for c in containers(workload):
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]), name
            assert "livenessProbe" in c, name
            if name != "controller":  # the controller serves nothing to be ready for
                assert "readinessProbe" in c, name


def test_controller_node_name_is_the_pod_name_and_replicas_are_several():
    controller = by_kind("Deployment")["controller"]
    assert controller["spec"]["replicas"] >= 2
    env = {e["name"]: e for e in containers(controller)[0]["env"]}
    assert env["SLIPWAY_NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_secrets_come_from_the_secret_never_inline():
    secret_keys = set(by_kind("Secret")["slipway"]["stringData"])
    for workload in [*by_kind("Deployment").values(), *by_kind("StatefulSet").values(), *by_kind("Job").values()]:
        for c in containers(workload):
            for e in c.get("env", []):
                assert "value" not in e or "PASSWORD" not in e["name"], e
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == "slipway" and ref["key"] in secret_keys
            assert not any("PASSWORD" in part and "$" not in part for part in c.get("command", []))
    assert {"SLIPWAY_ENCRYPTION_KEY", "SLIPWAY_SECRET_KEY", "REDIS_PASSWORD", "DATABASE_URL"} <= secret_keys


def test_only_slipway_pods_reach_postgres_redis_and_minio():
    policies = by_kind("NetworkPolicy")
    for name, port in (("postgres", 5432), ("redis", 6379), ("minio", 9000)):
        spec = policies[name]["spec"]
        assert spec["podSelector"]["matchLabels"] == {"app.kubernetes.io/component": name}
        assert spec["policyTypes"] == ["Ingress"]
        (rule,) = spec["ingress"]
        assert rule["ports"] == [{"protocol": "TCP", "port": port}]
        (peer,) = rule["from"]
        assert set(peer) == {"podSelector"}  # no namespaceSelector: pipeline namespaces match nothing
        (expr,) = peer["podSelector"]["matchExpressions"]
        assert expr["operator"] == "In" and set(expr["values"]) <= {"web", "controller", "migrate"}
    # Every Slipway pod carries the component label the policies select on.
    for workload in [*by_kind("Deployment").values(), *by_kind("StatefulSet").values()]:
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/component"] == workload["metadata"]["name"]


def test_controller_may_grant_jenkins_admin_only_by_binding():
    role = by_kind("ClusterRole")["slipway-dataplane"]
    bind = [r for r in role["rules"] if "bind" in r["verbs"]]
    assert bind == [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
                     "verbs": ["bind"], "resourceNames": ["admin"]}]
    assert not any("*" in r["verbs"] or "escalate" in r["verbs"] for r in role["rules"])


def test_controller_role_covers_every_call_of_the_data_plane_reconcile():
    from devops.dataplane.client import KINDS
    from tests.kubefake import RESOURCES

    plural = {kind: (api_version.split("/")[0] if "/" in api_version else "", p) for api_version, kind, p, _ in RESOURCES}
    rules = by_kind("ClusterRole")["slipway-dataplane"]["rules"]
    for kind in KINDS:
        group, resource = plural[kind]
        verbs = {v for r in rules if group in r["apiGroups"] and resource in r["resources"] for v in r["verbs"]}
        assert {"get", "create", "patch"} <= verbs, kind
    rb = {v for r in rules if "rolebindings" in r["resources"] for v in r["verbs"]}
    assert {"list", "delete"} <= rb  # reconcileRb lists bindings across namespaces and removes stale ones


def test_controller_role_covers_the_jenkins_engine_s_own_calls():
    """cleanup() deletes a run's agent pods by label (deletecollection); run() writes the deploy
    target secret (get/create/patch) — both in the projects' pipeline namespaces."""
    rules = by_kind("ClusterRole")["slipway-dataplane"]["rules"]

    def verbs(resource: str) -> set[str]:
        return {v for r in rules if "" in r["apiGroups"] and resource in r["resources"] for v in r["verbs"]}

    assert "deletecollection" in verbs("pods")
    assert {"get", "create", "patch"} <= verbs("secrets")
