"""The data plane reconciled through the REAL kubernetes client against a stateful fake API server."""
from __future__ import annotations

import base64

import pytest
import yaml
from cryptography import x509
from kubernetes import client as k

from devops.dataplane import names as n
from devops.dataplane.client import KubernetesAPI
from devops.dataplane.objects import desired_objects
from devops.dataplane.reconcile import covers, reconcile, render
from devops.engines.base import ProjectSpec
from tests.kubefake import fake_kube
from tests.kubeschema import problems

SPEC = ProjectSpec(project_id="p-abc", cluster_id="local", namespace="p-abc-pipeline", namespaces=("app", "web"))


@pytest.fixture
def kube():
    with fake_kube() as fk:
        yield fk, KubernetesAPI(k.ApiClient(k.Configuration(host=fk.url)))


def deployment(fk, name: str) -> dict:
    return fk.get("apps/v1", "deployments", SPEC.namespace, name)


def test_first_reconcile_creates_every_object_of_design_section_5(kube):
    fk, api = kube
    result = reconcile(SPEC, api)
    assert result.patched == [] and result.deleted == []
    assert set(result.created) == {
        "Namespace p-abc-pipeline", "Namespace cattle-pipeline",
        "Secret p-abc-pipeline/pipeline-secret", "Secret p-abc-pipeline/pipeline-api-key",
        "Secret cattle-pipeline/registry-ca-crt", "Secret cattle-pipeline/registry-ca-key",
        "Secret p-abc-pipeline/registry-crt", "ServiceAccount p-abc-pipeline/jenkins",
        "Service p-abc-pipeline/jenkins", "Deployment p-abc-pipeline/jenkins",
        "Service p-abc-pipeline/docker-registry", "Deployment p-abc-pipeline/docker-registry",
        "Service p-abc-pipeline/minio", "Deployment p-abc-pipeline/minio",
        "ConfigMap cattle-pipeline/proxy-mappings", "DaemonSet cattle-pipeline/registry-proxy",
        "RoleBinding p-abc-pipeline/pipeline-jenkins", "RoleBinding app/pipeline-jenkins",
        "RoleBinding web/pipeline-jenkins",
    }
    # What the server holds is what a real cluster would accept.
    assert [p for p in map(problems, fk.objects.values()) if p] == []
    rb = fk.get("rbac.authorization.k8s.io/v1", "rolebindings", "app", n.ROLE_BINDING)
    assert rb["subjects"] == [{"kind": "ServiceAccount", "name": "jenkins", "namespace": "p-abc-pipeline"}]
    assert rb["roleRef"]["name"] == "admin"


def test_second_reconcile_makes_no_write(kube):
    fk, api = kube
    reconcile(SPEC, api)
    before = len(fk.writes)
    again = reconcile(SPEC, api)
    assert again.writes == 0 and len(again.unchanged) == 19
    assert fk.writes[before:] == []


def test_generated_values_survive_reconciles(kube):
    fk, api = kube
    reconcile(SPEC, api)
    secret = fk.get("v1", "secrets", SPEC.namespace, n.PIPELINE_SECRET)
    token = base64.b64decode(secret["data"][n.SECRET_TOKEN_KEY]).decode()
    assert len(token) >= 24
    reconcile(SPEC, api)
    assert fk.get("v1", "secrets", SPEC.namespace, n.PIPELINE_SECRET)["data"] == secret["data"]


def test_registry_certificate_is_signed_by_the_cluster_ca_for_the_service_names(kube):
    fk, api = kube
    reconcile(SPEC, api)
    crt = fk.get("v1", "secrets", SPEC.namespace, n.REGISTRY_CRT_SECRET)["data"]
    ca = x509.load_pem_x509_certificate(base64.b64decode(crt[n.CA_CRT]))
    cert = x509.load_pem_x509_certificate(base64.b64decode(crt[n.CRT]))
    cert.verify_directly_issued_by(ca)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert "docker-registry.p-abc-pipeline.svc.cluster.local" in sans
    # A second project is signed by the same CA (one CA per cluster, the proxy trusts it).
    other = ProjectSpec(project_id="p-xyz", cluster_id="local", namespace="p-xyz-pipeline")
    reconcile(other, api)
    crt2 = fk.get("v1", "secrets", other.namespace, n.REGISTRY_CRT_SECRET)["data"]
    x509.load_pem_x509_certificate(base64.b64decode(crt2[n.CRT])).verify_directly_issued_by(ca)


def test_drift_in_replicas_and_image_is_patched_back(kube):
    fk, api = kube
    reconcile(SPEC, api)
    live = deployment(fk, n.JENKINS)
    live["spec"]["replicas"] = 0
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "evil/jenkins:latest"
    live["status"] = {"replicas": 1}  # what a server adds is not drift
    before = len(fk.writes)
    result = reconcile(SPEC, api)
    assert result.patched == ["Deployment p-abc-pipeline/jenkins"] and result.created == []
    assert [m for m, _p in fk.writes[before:]] == ["PATCH"]
    fixed = deployment(fk, n.JENKINS)
    assert fixed["spec"]["replicas"] == 1
    assert fixed["spec"]["template"]["spec"]["containers"][0]["image"] == n.IMAGES[n.JENKINS]
    assert reconcile(SPEC, api).writes == 0


def test_deleted_object_is_recreated(kube):
    fk, api = kube
    reconcile(SPEC, api)
    del fk.objects[("v1", "services", SPEC.namespace, n.MINIO)]
    assert reconcile(SPEC, api).created == ["Service p-abc-pipeline/minio"]


def test_bindings_leave_namespaces_that_left_the_project(kube):
    fk, api = kube
    reconcile(SPEC, api)
    smaller = ProjectSpec(project_id="p-abc", cluster_id="local", namespace="p-abc-pipeline", namespaces=("web", "new"))
    result = reconcile(smaller, api)
    assert result.deleted == ["RoleBinding app/pipeline-jenkins"]
    assert result.created == ["RoleBinding new/pipeline-jenkins"]
    rbs = {(o["metadata"]["namespace"]) for o in fk.of_kind("RoleBinding")}
    assert rbs == {"p-abc-pipeline", "web", "new"}


def test_bindings_of_other_projects_and_foreign_ones_are_left_alone(kube):
    fk, api = kube
    reconcile(SPEC, api)
    other = ProjectSpec(project_id="p-xyz", cluster_id="local", namespace="p-xyz-pipeline", namespaces=("shop",))
    reconcile(other, api)
    foreign = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "pipeline-jenkins", "namespace": "ops"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}}
    fk.objects[("rbac.authorization.k8s.io/v1", "rolebindings", "ops", "pipeline-jenkins")] = foreign
    result = reconcile(ProjectSpec(project_id="p-abc", cluster_id="local", namespace="p-abc-pipeline"), api)
    assert sorted(result.deleted) == ["RoleBinding app/pipeline-jenkins", "RoleBinding web/pipeline-jenkins"]
    assert fk.get("rbac.authorization.k8s.io/v1", "rolebindings", "shop", "pipeline-jenkins") is not None
    assert fk.get("rbac.authorization.k8s.io/v1", "rolebindings", "ops", "pipeline-jenkins") is not None


def test_proxy_mappings_keep_every_project_with_distinct_ports(kube):
    fk, api = kube
    reconcile(SPEC, api)
    reconcile(ProjectSpec(project_id="p-xyz", cluster_id="local", namespace="p-xyz-pipeline"), api)
    cm = fk.get("v1", "configmaps", n.COMMON_NAMESPACE, n.PROXY_MAPPINGS)
    ports = yaml.safe_load(cm["data"][n.MAPPINGS_KEY])
    assert set(ports) == {"p-abc", "p-xyz"} and ports["p-abc"] != ports["p-xyz"]
    assert all(n.PORT_RANGE[0] <= int(p) < n.PORT_RANGE[1] for p in ports.values())
    assert reconcile(SPEC, api).writes == 0  # p-abc keeps its port


def test_covers_treats_server_additions_as_no_drift():
    want = {"spec": {"replicas": 1, "containers": [{"name": "a", "image": "x"}]}}
    assert covers({"spec": {"replicas": 1, "paused": False, "containers": [{"name": "a", "image": "x", "tty": False}]}}, want)
    assert not covers({"spec": {"replicas": 2, "containers": [{"name": "a", "image": "x"}]}}, want)
    assert not covers({"spec": {"replicas": 1, "containers": []}}, want)


def test_render_is_valid_yaml_of_every_object_without_secret_values():
    text = render(SPEC)
    docs = list(yaml.safe_load_all(text))
    assert len(docs) == 19
    for doc in docs:
        if doc["kind"] == "Secret":
            assert set(doc["data"].values()) == {""}
    assert "BEGIN" not in text  # no key or certificate
    assert [p for p in map(problems, docs) if p] == []


def test_every_generated_object_passes_the_strict_schema():
    from devops.dataplane.certs import KeyPair
    from devops.dataplane.objects import Material

    m = Material(token="t" * 24, api_key="k" * 32, registry_htpasswd="admin:x", ca=KeyPair("c", "k"),
                 crt=KeyPair("c", "k"), registry_port=34001)
    objs = desired_objects(SPEC, m, {"p-other": 34002})
    assert len(objs) == 19
    assert [p for p in map(problems, objs) if p] == []


def test_the_schema_check_can_fail():
    bad = k.V1Deployment(api_version="apps/v1", kind="Deployment", metadata=k.V1ObjectMeta(name="x"),
                         spec=k.V1DeploymentSpec(selector=k.V1LabelSelector(), template=k.V1PodTemplateSpec()))
    data = k.ApiClient().sanitize_for_serialization(bad)
    data["spec"]["replica"] = 1  # misspelt: strict mode refuses unknown fields
    assert "replica" in problems(data)
