"""Options of the Jenkins engine, as plain data (`JenkinsOptions.from_settings()` is the only Django read)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Images of the containers Slipway adds for its own step types (a runScriptConfig step names its own).
KANIKO_IMAGE = "gcr.io/kaniko-project/executor:v1.23.2-debug"
TOOLS_IMAGE = "rancher/pipeline-tools:v0.1.16"
# Where the registry-proxy DaemonSet of the data plane answers on every node (Rancher's port).
LOCAL_REGISTRY = "127.0.0.1:34350"
# Cache root on the nodes when the project has no `devops-cache-dir` setting.
CACHE_DIR = "/var/lib/slipway/cache"


@dataclass(frozen=True)
class JenkinsOptions:
    url: str = ""
    user: str = ""
    token: str = field(default="", repr=False)  # a secret: never logged, never in repr
    kubeconfig: str = ""
    log_store_url: str = ""
    timeout: float = 10.0          # seconds per HTTP request (sync must stay cheap)
    kaniko_image: str = KANIKO_IMAGE
    tools_image: str = TOOLS_IMAGE
    local_registry: str = LOCAL_REGISTRY
    cache_dir: str = CACHE_DIR
    # Bytes of one step's progressive log fetched per sync pass at most; the rest comes next pass.
    log_piece: int = 1 << 20

    @classmethod
    def from_settings(cls, **overrides: Any) -> JenkinsOptions:
        from django.conf import settings

        values: dict[str, Any] = dict(
            url=settings.SLIPWAY_JENKINS_URL,
            user=settings.SLIPWAY_JENKINS_USER,
            token=settings.SLIPWAY_JENKINS_TOKEN,
            kubeconfig=settings.SLIPWAY_KUBECONFIG,
            log_store_url=settings.SLIPWAY_LOG_STORE,
        )
        values.update(overrides)
        return cls(**values)
