"""The data plane of one project as `kubernetes` client models (DESIGN §5; Rancher v2.5's deploy.go).

`desired_objects(spec, material)` is pure: the same ProjectSpec and Material
give the same objects. Material holds what is generated once per project
(the random token, the API key, certificates, the proxy port): `reconcile`
reads it back from the cluster when it exists, so generated values never
change once created.

In the project's pipeline namespace `<project_id>-pipeline`: the secrets
`pipeline-secret` (random token) and `pipeline-api-key`, the service account
`jenkins`, the Deployments + Services `jenkins`, `docker-registry`, `minio`,
the registry's serving certificate `registry-crt`. In the cluster-wide
`cattle-pipeline`: the registry CA (`registry-ca-crt`, the certificate the
proxy trusts; `registry-ca-key`, mounted by nothing), the `proxy-mappings`
ConfigMap (project id -> node port) and the `registry-proxy` DaemonSet.
In every namespace of the project (and the pipeline namespace): the
RoleBinding `pipeline-jenkins` that grants the service account the built-in
ClusterRole `admin` there (Rancher's reconcileRb).
"""
from __future__ import annotations

import base64
from dataclasses import dataclass, field

import bcrypt
import yaml
from kubernetes import client as k

from devops.dataplane import names as n
from devops.dataplane.certs import KeyPair
from devops.engines.base import ProjectSpec

Obj = object  # a kubernetes.client V1* model


@dataclass(frozen=True)
class Material:
    """Generated once per project; secret (never logged: repr hides it)."""

    token: str = field(repr=False)
    api_key: str = field(repr=False)
    registry_htpasswd: str = field(repr=False)    # "admin:<bcrypt of token>"
    ca: KeyPair = field(repr=False)
    crt: KeyPair = field(repr=False)
    registry_port: int = 0                        # the project's node port on the registry proxy


def htpasswd(token: str) -> str:
    return f"{n.DEFAULT_USER}:" + bcrypt.hashpw(token.encode(), bcrypt.gensalt()).decode()


def registry_dns_names(namespace: str) -> list[str]:
    return [n.REGISTRY, f"{n.REGISTRY}.{namespace}", f"{n.REGISTRY}.{namespace}.svc.cluster.local"]


def project_namespaces(spec: ProjectSpec) -> list[str]:
    """Where `jenkins` may act: the pipeline namespace, then the project's namespaces (sorted, unique)."""
    return [spec.namespace, *sorted(set(spec.namespaces) - {spec.namespace})]


def _meta(name: str, namespace: str | None, spec: ProjectSpec, **extra) -> k.V1ObjectMeta:
    return k.V1ObjectMeta(name=name, namespace=namespace,
                          labels={**n.MANAGED_BY, n.PROJECT_LABEL: spec.project_id}, **extra)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _secret(name: str, namespace: str, spec: ProjectSpec, data: dict[str, str]) -> k.V1Secret:
    return k.V1Secret(api_version="v1", kind="Secret", metadata=_meta(name, namespace, spec),
                      type="Opaque", data={key: _b64(v) for key, v in data.items()})


def _secret_env(name: str, key: str) -> k.V1EnvVar:
    return k.V1EnvVar(name=name, value_from=k.V1EnvVarSource(
        secret_key_ref=k.V1SecretKeySelector(name=n.PIPELINE_SECRET, key=key)))


def _resources(cpu_req: str, mem_req: str, cpu_lim: str, mem_lim: str) -> k.V1ResourceRequirements:
    return k.V1ResourceRequirements(requests={"cpu": cpu_req, "memory": mem_req},
                                    limits={"cpu": cpu_lim, "memory": mem_lim})


def _service(name: str, spec: ProjectSpec, selector: dict[str, str], ports: list[tuple[str, int]]) -> k.V1Service:
    return k.V1Service(
        api_version="v1", kind="Service", metadata=_meta(name, spec.namespace, spec),
        spec=k.V1ServiceSpec(selector=selector,
                             ports=[k.V1ServicePort(name=p, port=port, target_port=port) for p, port in ports]))


def _deployment(name: str, spec: ProjectSpec, labels: dict[str, str], pod: k.V1PodSpec) -> k.V1Deployment:
    return k.V1Deployment(
        api_version="apps/v1", kind="Deployment", metadata=_meta(name, spec.namespace, spec),
        spec=k.V1DeploymentSpec(
            replicas=1,
            selector=k.V1LabelSelector(match_labels={"app": name}),
            template=k.V1PodTemplateSpec(metadata=k.V1ObjectMeta(labels=labels), spec=pod)))


def namespaces(spec: ProjectSpec) -> list[Obj]:
    return [
        k.V1Namespace(api_version="v1", kind="Namespace", metadata=_meta(
            spec.namespace, None, spec,
            annotations={"field.cattle.io/projectId": f"{spec.cluster_id}:{spec.project_id}"})),
        k.V1Namespace(api_version="v1", kind="Namespace",
                      metadata=k.V1ObjectMeta(name=n.COMMON_NAMESPACE, labels=dict(n.MANAGED_BY))),
    ]


def secrets(spec: ProjectSpec, m: Material) -> list[Obj]:
    ns = spec.namespace
    common = [
        _secret(n.REGISTRY_CA_SECRET, n.COMMON_NAMESPACE, spec, {n.CA_CRT: m.ca.cert_pem}),
        _secret(n.REGISTRY_CA_KEY_SECRET, n.COMMON_NAMESPACE, spec, {n.CA_CRT: m.ca.cert_pem, n.CA_KEY: m.ca.key_pem}),
    ]
    for obj in common:  # shared by every project of the cluster: not one project's
        del obj.metadata.labels[n.PROJECT_LABEL]
    return [
        _secret(n.PIPELINE_SECRET, ns, spec, {
            n.SECRET_TOKEN_KEY: m.token, n.SECRET_USER_KEY: n.DEFAULT_USER,
            n.SECRET_REGISTRY_TOKEN_KEY: m.registry_htpasswd}),
        _secret(n.API_KEY_SECRET, ns, spec, {n.API_KEY_KEY: m.api_key}),
        *common,
        _secret(n.REGISTRY_CRT_SECRET, ns, spec, {n.CRT: m.crt.cert_pem, n.KEY: m.crt.key_pem, n.CA_CRT: m.ca.cert_pem}),
    ]


def jenkins(spec: ProjectSpec) -> list[Obj]:
    labels = {"app": n.JENKINS, "jenkins": "master"}
    pod = k.V1PodSpec(
        service_account_name=n.JENKINS,
        containers=[k.V1Container(
            name=n.JENKINS, image=n.IMAGES[n.JENKINS],
            env=[
                _secret_env("ADMIN_PASSWORD", n.SECRET_TOKEN_KEY),
                _secret_env("ADMIN_USER", n.SECRET_USER_KEY),
                k.V1EnvVar(name="JAVA_OPTS", value=(
                    "-Xmx300m -Dhudson.slaves.NodeProvisioner.initialDelay=0"
                    " -Dhudson.slaves.NodeProvisioner.MARGIN=50 -Dhudson.slaves.NodeProvisioner.MARGIN0=0.85")),
                k.V1EnvVar(name="NAMESPACE", value=spec.namespace),
                k.V1EnvVar(name="JENKINS_POD_IP", value_from=k.V1EnvVarSource(
                    field_ref=k.V1ObjectFieldSelector(field_path="status.podIP"))),
            ],
            ports=[k.V1ContainerPort(name="http", container_port=n.JENKINS_PORT),
                   k.V1ContainerPort(name="agent", container_port=n.JENKINS_AGENT_PORT)],
            readiness_probe=k.V1Probe(http_get=k.V1HTTPGetAction(path="/login", port=n.JENKINS_PORT)),
            resources=_resources("500m", "300Mi", "1", "1Gi"),
        )],
    )
    return [
        _service(n.JENKINS, spec, labels, [("http", n.JENKINS_PORT), ("agent", n.JENKINS_AGENT_PORT)]),
        _deployment(n.JENKINS, spec, labels, pod),
    ]


def registry(spec: ProjectSpec) -> list[Obj]:
    crt, auth = "/opt/crt/", "/opt/auth/"
    pod = k.V1PodSpec(
        containers=[k.V1Container(
            name=n.REGISTRY, image=n.IMAGES[n.REGISTRY],
            ports=[k.V1ContainerPort(name="registry", container_port=n.REGISTRY_PORT)],
            env=[k.V1EnvVar(name=key, value=value) for key, value in (
                ("REGISTRY_HTTP_ADDR", f"0.0.0.0:{n.REGISTRY_PORT}"),
                ("REGISTRY_HTTP_TLS_CERTIFICATE", crt + n.CRT),
                ("REGISTRY_HTTP_TLS_KEY", crt + n.KEY),
                ("REGISTRY_AUTH", "htpasswd"),
                ("REGISTRY_AUTH_HTPASSWD_REALM", "Registry Realm"),
                ("REGISTRY_AUTH_HTPASSWD_PATH", auth + n.SECRET_REGISTRY_TOKEN_KEY),
            )],
            resources=_resources("100m", "100Mi", "200m", "200Mi"),
            volume_mounts=[k.V1VolumeMount(name="crt", mount_path=crt, read_only=True),
                           k.V1VolumeMount(name="auth", mount_path=auth, read_only=True),
                           k.V1VolumeMount(name="data", mount_path="/var/lib/registry")],
        )],
        volumes=[
            k.V1Volume(name="crt", secret=k.V1SecretVolumeSource(secret_name=n.REGISTRY_CRT_SECRET)),
            k.V1Volume(name="auth", secret=k.V1SecretVolumeSource(
                secret_name=n.PIPELINE_SECRET,
                items=[k.V1KeyToPath(key=n.SECRET_REGISTRY_TOKEN_KEY, path=n.SECRET_REGISTRY_TOKEN_KEY)])),
            k.V1Volume(name="data", empty_dir=k.V1EmptyDirVolumeSource()),
        ],
    )
    labels = {"app": n.REGISTRY}
    return [_service(n.REGISTRY, spec, labels, [("registry", n.REGISTRY_PORT)]),
            _deployment(n.REGISTRY, spec, labels, pod)]


def minio(spec: ProjectSpec) -> list[Obj]:
    pod = k.V1PodSpec(containers=[k.V1Container(
        name=n.MINIO, image=n.IMAGES[n.MINIO], args=["server", "/data"],
        # The names this MinIO release reads (Rancher's); newer releases call them MINIO_ROOT_*.
        env=[_secret_env("MINIO_ACCESS_KEY", n.SECRET_USER_KEY),
             _secret_env("MINIO_SECRET_KEY", n.SECRET_TOKEN_KEY)],
        ports=[k.V1ContainerPort(name="minio", container_port=n.MINIO_PORT)],
        readiness_probe=k.V1Probe(http_get=k.V1HTTPGetAction(path="/minio/health/ready", port=n.MINIO_PORT)),
        resources=_resources("100m", "100Mi", "200m", "200Mi"),
        volume_mounts=[k.V1VolumeMount(name="data", mount_path="/data")],
    )], volumes=[k.V1Volume(name="data", empty_dir=k.V1EmptyDirVolumeSource())])
    labels = {"app": n.MINIO}
    return [_service(n.MINIO, spec, labels, [("minio", n.MINIO_PORT)]), _deployment(n.MINIO, spec, labels, pod)]


def proxy_mappings(spec: ProjectSpec, mappings: dict[str, int]) -> k.V1ConfigMap:
    """The cluster's port map (every project's entry: the caller merges the live map in)."""
    text = yaml.safe_dump({pid: str(port) for pid, port in sorted(mappings.items())}, default_flow_style=False)
    return k.V1ConfigMap(api_version="v1", kind="ConfigMap",
                         metadata=k.V1ObjectMeta(name=n.PROXY_MAPPINGS, namespace=n.COMMON_NAMESPACE,
                                                 labels=dict(n.MANAGED_BY)),
                         data={n.MAPPINGS_KEY: text})


def registry_proxy() -> k.V1DaemonSet:
    labels = {"app": n.REGISTRY_PROXY}
    pod = k.V1PodSpec(
        host_network=True, dns_policy="ClusterFirstWithHostNet",
        containers=[k.V1Container(
            name=n.REGISTRY_PROXY, image=n.IMAGES[n.REGISTRY_PROXY], command=["nginx-proxy"],
            resources=_resources("50m", "50Mi", "200m", "200Mi"),
            volume_mounts=[k.V1VolumeMount(name="mappings", mount_path="/opt/mapping/"),
                           k.V1VolumeMount(name="crt", mount_path="/opt/crt/", read_only=True)])],
        volumes=[
            k.V1Volume(name="mappings", config_map=k.V1ConfigMapVolumeSource(
                name=n.PROXY_MAPPINGS, items=[k.V1KeyToPath(key=n.MAPPINGS_KEY, path=n.MAPPINGS_KEY)])),
            k.V1Volume(name="crt", secret=k.V1SecretVolumeSource(secret_name=n.REGISTRY_CA_SECRET)),
        ],
    )
    return k.V1DaemonSet(
        api_version="apps/v1", kind="DaemonSet",
        metadata=k.V1ObjectMeta(name=n.REGISTRY_PROXY, namespace=n.COMMON_NAMESPACE, labels=dict(n.MANAGED_BY)),
        spec=k.V1DaemonSetSpec(selector=k.V1LabelSelector(match_labels=labels),
                               template=k.V1PodTemplateSpec(metadata=k.V1ObjectMeta(labels=labels), spec=pod)))


def role_binding(spec: ProjectSpec, namespace: str) -> k.V1RoleBinding:
    return k.V1RoleBinding(
        api_version="rbac.authorization.k8s.io/v1", kind="RoleBinding",
        metadata=_meta(n.ROLE_BINDING, namespace, spec),
        role_ref=k.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=n.ROLE),
        subjects=[k.RbacV1Subject(kind="ServiceAccount", name=n.JENKINS, namespace=spec.namespace)])


def desired_objects(spec: ProjectSpec, m: Material, mappings: dict[str, int] | None = None) -> list[Obj]:
    """Every object of the project's data plane, in the order they are created."""
    sa = k.V1ServiceAccount(api_version="v1", kind="ServiceAccount", metadata=_meta(n.JENKINS, spec.namespace, spec))
    return [
        *namespaces(spec),
        *secrets(spec, m),
        sa,
        *jenkins(spec),
        *registry(spec),
        *minio(spec),
        proxy_mappings(spec, {**(mappings or {}), spec.project_id: m.registry_port}),
        registry_proxy(),
        *(role_binding(spec, ns) for ns in project_namespaces(spec)),
    ]
