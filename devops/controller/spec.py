"""Models -> `RunSpec` / `ProjectSpec`: the plain data an engine gets (engines never see models).

The CICD_* environment (DESIGN §3), `envFrom` secrets resolved from the
project's Secret rows, git auth from the pipeline's credential, the values
to mask, and the project's effective PipelineSettings.

Runs of pull requests run code from outside the project (`is_trusted`):
their RunSpec's `trusted` is False, it carries no envFrom secrets and no
registry credentials of the project, and engines refuse their pushes to
remote registries and never publish their caches. For the built-in registry
every run gets its project's own credential (devops/registry/tokens.py):
trusted runs may pull and push `<project id>/...`; a run of a pull request
may pull those and push only its own `<project id>/pr/<execution>/...`. No
run gets a credential that reaches another project.

`CICD_LOCAL_REGISTRY` is the registry address plus that namespace
(`127.0.0.1:5000/p-abcde`, `127.0.0.1:5000/p-abcde/pr/p-xyzab-7`), as in
Rancher, where it named the project's own registry: a file's
`${CICD_LOCAL_REGISTRY}/myorg/app:7` is the image its `tag: myorg/app:7`
pushed (the publish step adds the same namespace). Engines take the bare
address from it (`devops.registry.tokens.split_local_registry`).
"""
from __future__ import annotations

import logging
import re

from django.conf import settings

from devops.crypto import Undecryptable
from devops.engines.base import (
    DEPLOY_TARGET_SECRET,
    UNTRUSTED_EVENTS,
    GitAuth,
    ProjectSpec,
    RunSpec,
)
from devops.models import PipelineExecution, Project, Secret
from devops.pipeline.config import PipelineConfig

log = logging.getLogger("devops.controller")

# Project settings that become well-known environment variables of every step.
SETTING_ENV = {
    "pip-index-url": "PIP_INDEX_URL",
    "npm-registry": "npm_config_registry",
    "goproxy": "GOPROXY",
}


def is_trusted(execution: PipelineExecution) -> bool:
    """False for an execution triggered by a pull request (triggers set `event`; the same
    rule as RunSpec.trusted, which engines read)."""
    return execution.event not in UNTRUSTED_EVENTS


def repo_name(url: str) -> str:
    """`https://host/org/app.git` -> `app` (CICD_GIT_REPO_NAME)."""
    tail = re.split(r"[/:]", url.rstrip("/"))[-1]
    return tail.removesuffix(".git")


def cicd_env(execution: PipelineExecution) -> dict[str, str]:
    """The CICD_* variables of an execution. Values are data, never shell text."""
    pipeline, project = execution.pipeline, execution.project
    ref = execution.ref
    tag = ref[len("refs/tags/"):] if ref.startswith("refs/tags/") else ""
    return {
        "CI": "true",
        "CICD_GIT_URL": execution.repository_url,
        "CICD_GIT_REPO_NAME": repo_name(execution.repository_url),
        "CICD_GIT_COMMIT": execution.commit,
        "CICD_GIT_BRANCH": execution.branch,
        "CICD_GIT_REF": ref,
        "CICD_GIT_TAG": tag,
        "CICD_EVENT": execution.event,
        "CICD_TRIGGER_TYPE": execution.trigger_type,
        "CICD_EXECUTION_ID": execution.name,
        "CICD_EXECUTION_SEQUENCE": str(execution.run),
        "CICD_PIPELINE_ID": pipeline.name,
        "CICD_PROJECT_ID": project.id,
        "CICD_CLUSTER_ID": project.cluster_id,
        # The built-in registry's address (DATA_DIR/registry/state.json) and the run's
        # namespace in it; empty until the registry first ran.
        "CICD_LOCAL_REGISTRY": _local_registry(project.id, execution.name, trusted=is_trusted(execution)),
    }


def _local_registry(project_id: str, execution: str, *, trusted: bool) -> str:
    from devops.registry.server import registry_info
    from devops.registry.tokens import local_registry_value

    info = registry_info(settings.DATA_DIR)
    return local_registry_value(info.address, project_id, execution, trusted=trusted) if info else ""


def registry_auth(project, *, trusted: bool = True, execution: str = "") -> dict[str, tuple[str, str]]:
    """host -> (username, password): the project's registry credentials (trusted runs only)
    and the project's credential for the built-in registry (push+pull of `<project id>/...`
    for trusted runs; for the pull-request run `execution`, push only to its own
    `<project id>/pr/<execution>/...`)."""
    from devops.models import RegistryCredential
    from devops.registry.server import project_auth, registry_info

    auth = {}
    if trusted:
        auth = {row.host: (row.username, row.password) for row in RegistryCredential.objects.filter(project=project)}
    info = registry_info(settings.DATA_DIR)
    own = project_auth(settings.DATA_DIR, project.id, trusted=trusted, execution=execution) \
        if info is not None else None
    if own is not None:
        auth[info.address] = own
    return auth


def build_project_spec(project: Project) -> ProjectSpec:
    """The ProjectSpec `engine.deploy()` gets: namespace, effective settings, namespaces, every
    secret that can be read.

    A secret stored under another SLIPWAY_ENCRYPTION_KEY is left out (and
    logged): every start deploys the project, so raising here would fail every
    run of the project; a run that names it in `envFrom` still fails, in
    build_spec, with the reason.
    """
    secrets: dict[str, dict[str, str]] = {}
    for secret in Secret.objects.filter(project=project):
        if isinstance(secret.data, Undecryptable):
            log.warning("%s: secret %s left out of deploy(): %s", project.id, secret.name, secret.data.error)
            continue
        secrets[secret.name] = {str(k): str(v) for k, v in (secret.data or {}).items()}
    project_settings = {row.name: row.effective for row in project.settings.all()}
    return ProjectSpec(
        project_id=project.id,
        cluster_id=project.cluster_id,
        namespace=f"{project.id}-pipeline",
        settings=project_settings,
        namespaces=tuple(dict.fromkeys(
            ns.strip() for ns in project_settings.get("namespaces", "").split(",") if ns.strip())),
        secrets=secrets,
    )


def build_spec(execution: PipelineExecution) -> RunSpec:
    """The RunSpec of an execution (a handful of queries; callers cache it)."""
    config = PipelineConfig.from_json(execution.config)
    project = execution.project
    pipeline = execution.pipeline
    project_settings = {
        row.name: row.effective for row in project.settings.all()
    }
    env = cicd_env(execution)
    for name, var in SETTING_ENV.items():
        if project_settings.get(name):
            env[var] = project_settings[name]

    trusted = is_trusted(execution)
    mask: list[str] = []
    secrets: dict[str, dict[str, str]] = {}
    wanted = {ef.source_name for stage in config.stages for step in stage.steps for ef in step.env_from}
    if wanted and trusted:
        for secret in Secret.objects.filter(project=project, name__in=wanted):
            data = {str(k): str(v) for k, v in (secret.data or {}).items()}
            secrets[secret.name] = data
            mask.extend(v for v in data.values() if v)

    auth = GitAuth()
    cred = pipeline.credential
    if cred is not None:
        auth = GitAuth(token=cred.access_token or "", username=cred.git_username(),
                       ssh_private_key=cred.ssh_private_key or "")
        mask.extend(v for v in (auth.token, auth.ssh_private_key) if v)

    reg_auth = registry_auth(project, trusted=trusted, execution=execution.name)
    mask.extend(p for _u, p in reg_auth.values() if p)

    # The deploy target (a kubeconfig in the project Secret `deploy-target`): trusted runs only.
    target: dict[str, str] = {}
    if trusted:
        row = Secret.objects.filter(project=project, name=DEPLOY_TARGET_SECRET).first()
        target = {str(k): str(v) for k, v in ((row.data or {}) if row else {}).items()}
        if target.get("kubeconfig"):
            from devops.dataplane.client import kubeconfig_secrets

            mask.extend(kubeconfig_secrets(target["kubeconfig"]))

    return RunSpec(
        execution=execution.name,
        project_id=project.id,
        pipeline_id=pipeline.name,
        run=execution.run,
        repository_url=execution.repository_url,
        commit=execution.commit,
        branch=execution.branch,
        ref=execution.ref,
        event=execution.event,
        trigger_type=execution.trigger_type,
        config=config,
        env=env,
        secrets=secrets,
        git_auth=auth,
        # Longest first, so a secret containing another is masked whole.
        mask=tuple(sorted(set(mask), key=len, reverse=True)),
        settings=project_settings,
        registry_auth=reg_auth,
        deploy_kubeconfig=target.get("kubeconfig", ""),
        deploy_namespace=target.get("namespace") or project_settings.get("deploy-namespace") or "default",
        scheduled_nodes=tuple(n for n in (pipeline.execution_scheduled_info or []) if isinstance(n, str)),
    )


def bare_spec(execution: PipelineExecution) -> RunSpec:
    """A RunSpec with names only, for an execution whose row cannot be read whole.

    An undecryptable credential or a config of an old schema makes
    `build_spec` raise; stopping and cleaning up the run (engine.stop,
    engine.cleanup) needs only its name and handle. Never for run().
    """
    return RunSpec(
        execution=execution.name, project_id=execution.project_id, pipeline_id="", run=execution.run or 0,
        repository_url="", commit="", branch="", ref="", event="", trigger_type="",
        config=PipelineConfig(stages=()),
    )
