"""Names, images and ports of the data plane: Rancher v2.5's (pkg/pipeline/utils/constants.go).

Kept as Rancher spelled them, so a cluster that ran Rancher's pipelines and
one run by Slipway look alike to an operator (`kubectl -n p-xxxx-pipeline get deploy`).
"""
from __future__ import annotations

# The cluster-wide namespace of the registry proxy (one DaemonSet and one port map for all projects).
COMMON_NAMESPACE = "cattle-pipeline"
NAMESPACE_SUFFIX = "-pipeline"

JENKINS = "jenkins"                      # Deployment, Service and ServiceAccount
REGISTRY = "docker-registry"             # Deployment and Service
MINIO = "minio"                          # Deployment and Service
REGISTRY_PROXY = "registry-proxy"        # DaemonSet in COMMON_NAMESPACE
PROXY_MAPPINGS = "proxy-mappings"        # ConfigMap in COMMON_NAMESPACE: project id -> node port
NETWORK_POLICY = "pipeline-np"
ROLE_BINDING = "pipeline-jenkins"        # in every namespace of the project
ROLE = "admin"                           # the built-in ClusterRole the binding grants (as Rancher)

PIPELINE_SECRET = "pipeline-secret"      # the random token: Jenkins admin, MinIO keys, registry htpasswd
SECRET_USER_KEY = "admin-user"
SECRET_TOKEN_KEY = "admin-token"
SECRET_REGISTRY_TOKEN_KEY = "registry-token"
DEFAULT_USER = "admin"
API_KEY_SECRET = "pipeline-api-key"      # Slipway's API token for callbacks from Jenkins
API_KEY_KEY = "pipeline-api-key"

REGISTRY_CA_SECRET = "registry-ca-crt"   # in COMMON_NAMESPACE: the CA certificate the proxy trusts
REGISTRY_CA_KEY_SECRET = "registry-ca-key"  # in COMMON_NAMESPACE: CA cert + key, to sign new projects; mounted by nothing
REGISTRY_CRT_SECRET = "registry-crt"     # in the pipeline namespace: the registry's serving cert, signed by the CA
CA_CRT, CA_KEY = "ca.crt", "ca.key"
CRT, KEY = "client.cert", "client.key"

MAPPINGS_KEY = "mappings.yaml"           # the key of proxy-mappings the proxy reads
PORT_RANGE = (34000, 35000)              # node ports of the proxy (Rancher's defaultPortRange), end exclusive

JENKINS_PORT, JENKINS_AGENT_PORT = 8080, 50000
REGISTRY_PORT = 443
MINIO_PORT = 9000

# Rancher v2.5's PipelineSystemImages (pkg/apis/management.cattle.io/v3/tools_system_images.go).
IMAGES = {
    JENKINS: "rancher/pipeline-jenkins-server:v0.1.4",
    REGISTRY: "registry:2",
    MINIO: "minio/minio:RELEASE.2020-07-13T18-09-56Z",
    REGISTRY_PROXY: "rancher/pipeline-tools:v0.1.15",
}

# Every object Slipway manages carries these labels (`managed-by` lets `kubectl get -l` find them).
MANAGED_BY = {"app.kubernetes.io/managed-by": "slipway"}
PROJECT_LABEL = "pipeline.slipway.io/project"


def pipeline_namespace(project_id: str) -> str:
    return project_id + NAMESPACE_SUFFIX
