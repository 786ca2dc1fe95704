"""Every Slipway object rendered in CRD shape — the single source for the API and `export`.

Shape (a Rancher v2 user recognises it)::

    apiVersion: project.slipway.io/v3
    kind: Pipeline
    metadata: {name, namespace, labels, creationTimestamp}
    spec: {...}     # what the user asked for, Rancher's field names
    status: {...}   # what Slipway observed

Contract:

- `render(obj)` returns plain JSON-able data (str/int/bool/None/list/dict);
  timestamps are RFC 3339 strings in UTC (`2026-11-26T10:39:01Z`).
- Secrets never leave through here: no function in this module reads an
  access/refresh token, SSH key, OAuth client secret, the pipeline webhook
  token or an image-webhook token; a Secret is rendered with its key names
  only (its values are decrypted to list the keys and go no further).
- `KINDS` maps the plural kind names of `export` (and the API) to a
  queryset factory that prefetches everything `render` touches, so rendering
  a list costs a constant number of queries whatever its length.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml
from django.db.models import Model, QuerySet

from devops.models import (
    Pipeline,
    PipelineExecution,
    PipelineSetting,
    Project,
    ProjectMember,
    Secret,
    SourceCodeCredential,
    SourceCodeProviderConfig,
    SourceCodeRepository,
)

API_VERSION = "project.slipway.io/v3"
LABEL_PREFIX = "slipway.io/"

# Fields of an imageWebHookToken entry that may be shown; `token` is not one.
IMAGE_WEBHOOK_FIELDS = ("branches", "comment", "imageType", "triggerImage")


def rfc3339(value: datetime | None) -> str | None:
    """`2026-11-26T10:39:01Z` (UTC, whole seconds, as Kubernetes writes times), or None."""
    if value is None:
        return None
    if value.tzinfo is None:  # USE_TZ is on; a naive value can only come from a test
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _object(
    kind: str,
    name: str,
    namespace: str,
    created: datetime | None,
    spec: dict[str, Any],
    status: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels or {},
            "creationTimestamp": rfc3339(created),
        },
        "spec": spec,
    }
    if status is not None:
        data["status"] = status
    return data


# --- one function per kind -----------------------------------------------------------


def project(obj: Project) -> dict[str, Any]:
    """A Project lives in its cluster's namespace, as in Rancher (`local:p-xxxxx`)."""
    return _object(
        "Project",
        obj.id,
        obj.cluster_id,
        obj.created,
        spec={"displayName": obj.name, "description": obj.description, "clusterName": obj.cluster_id},
        status={},
    )


def member(obj: ProjectMember) -> dict[str, Any]:
    """A membership (Rancher: ProjectRoleTemplateBinding); named after the user."""
    return _object(
        "ProjectMember",
        obj.user.get_username(),
        obj.project_id,
        None,
        spec={"userName": obj.user.get_username(), "role": obj.role, "projectName": obj.project_id},
    )


def pipeline_setting(obj: PipelineSetting) -> dict[str, Any]:
    """`value` is what the owner set ("" = not set); `default` applies when it is empty."""
    return _object(
        "PipelineSetting",
        obj.name,
        obj.project_id,
        None,
        spec={
            "value": obj.value,
            "default": obj.default,
            "description": obj.description,
            "projectName": obj.project_id,
        },
        status={"effective": obj.effective, "customized": obj.value != ""},
    )


def secret(obj: Secret) -> dict[str, Any]:
    """Only the key names: values are write-only everywhere.

    A secret stored under another SLIPWAY_ENCRYPTION_KEY is listed with no
    keys and `status.error` (it can still be replaced or deleted)."""
    status = {"updated": rfc3339(obj.updated)}
    try:
        keys = sorted(obj.data)
    except ValueError as exc:
        keys, status["error"] = [], str(exc)
    return _object("Secret", obj.name, obj.project_id, obj.created, spec={"keys": keys}, status=status)


def _image_webhooks(entries: list) -> list[dict[str, Any]]:
    shown = []
    for entry in entries or []:
        if isinstance(entry, dict):
            shown.append({key: entry[key] for key in IMAGE_WEBHOOK_FIELDS if key in entry})
    return shown


def pipeline(obj: Pipeline) -> dict[str, Any]:
    """Needs `project` and `credential` loaded (see KINDS) to stay one query per list."""
    return _object(
        "Pipeline",
        obj.name,
        obj.project_id,
        obj.created,
        labels={f"{LABEL_PREFIX}state": obj.pipeline_state},
        spec={
            "displayName": obj.display_name,
            "projectName": obj.project.namespaced_id,
            "repositoryUrl": obj.repository_url,
            "defaultBranch": obj.default_branch,
            "sourceCodeCredentialName": obj.credential.name if obj.credential_id else "",
            "triggerWebhookPush": obj.trigger_webhook_push,
            "triggerWebhookPr": obj.trigger_webhook_pr,
            "triggerWebhookTag": obj.trigger_webhook_tag,
            "imageWebHookToken": _image_webhooks(obj.image_webhooks),
            "pollInterval": obj.poll_interval,
            "pollBranches": list(obj.poll_branches or []),
        },
        status={
            "pipelineState": obj.pipeline_state,
            "nextRun": obj.next_run,
            "lastExecutionId": obj.last_execution_id,
            "lastRunState": obj.last_run_state,
            "lastStarted": rfc3339(obj.last_started),
            "webHookId": obj.webhook_id,
            "executionScheduledInfo": obj.execution_scheduled_info,
        },
    )


def _stages(obj: PipelineExecution) -> list[dict[str, Any]]:
    # Iterating the prefetched managers (not .filter()) keeps this query-free.
    steps_by_stage: dict[int, list] = defaultdict(list)
    for step in obj.steps.all():
        steps_by_stage[step.stage_index].append(step)
    stages = []
    for stage in sorted(obj.stages.all(), key=lambda s: s.index):
        steps = sorted(steps_by_stage.get(stage.index, ()), key=lambda s: s.index)
        stages.append(
            {
                "name": stage.name,
                "state": stage.state,
                "started": rfc3339(stage.started),
                "ended": rfc3339(stage.ended),
                "steps": [
                    {
                        "name": step.name,
                        "state": step.state,
                        "started": rfc3339(step.started),
                        "ended": rfc3339(step.ended),
                        "exitCode": step.exit_code,
                        "message": step.message,
                        # publishImageConfig steps: the digest the registry reported for the push
                        **({"imageDigest": step.image_digest} if step.image_digest else {}),
                    }
                    for step in steps
                ],
            }
        )
    return stages


def _pipeline_config(stored: dict) -> Any:
    """The run's config in pipeline-file shape (`runScriptConfig: {image, ...}`, Rancher's names).

    Executions store `PipelineConfig.to_json()` (the typed form, `type: {kind: ...}`);
    a row that does not hold that form is shown as stored.
    """
    from devops.pipeline import PipelineConfig
    from devops.pipeline.dump import to_data

    try:
        return to_data(PipelineConfig.from_json(stored))
    except (TypeError, ValueError):  # pydantic's ValidationError is a ValueError
        return stored


def execution(obj: PipelineExecution) -> dict[str, Any]:
    """Needs `project`, `pipeline`, `trigger_user`, `stages` and `steps` loaded (see KINDS)."""
    labels = {
        f"{LABEL_PREFIX}pipeline": obj.pipeline.name,
        f"{LABEL_PREFIX}finished": "true" if obj.is_finished else "false",
    }
    return _object(
        "PipelineExecution",
        obj.name,
        obj.project_id,
        obj.created,
        labels=labels,
        spec={
            "projectName": obj.project.namespaced_id,
            "pipelineName": f"{obj.project_id}:{obj.pipeline.name}",
            "run": obj.run,
            "triggeredBy": obj.trigger_type,
            "triggerUserName": obj.trigger_user.get_username() if obj.trigger_user_id else "",
            "repositoryUrl": obj.repository_url,
            "branch": obj.branch,
            "ref": obj.ref,
            "commit": obj.commit,
            "event": obj.event,
            "message": obj.message,
            "author": obj.author,
            "email": obj.author_email,
            "temporaryConfig": obj.temporary_config,
            "pipelineConfig": _pipeline_config(obj.config),
        },
        status={
            "executionState": obj.execution_state,
            "started": rfc3339(obj.started),
            "ended": rfc3339(obj.ended),
            "conditions": obj.conditions,
            "node": obj.node,
            "engine": obj.engine,
            "error": obj.error,
            "stages": _stages(obj),
        },
    )


def provider_config(obj: SourceCodeProviderConfig) -> dict[str, Any]:
    """The OAuth app of a provider; `clientSecret` is never shown."""
    return _object(
        "SourceCodeProviderConfig",
        obj.type,
        obj.project_id,
        None,
        spec={
            "type": obj.type,
            "enabled": obj.enabled,
            "hostname": obj.hostname,
            "tls": obj.tls,
            "clientId": obj.client_id,
            "redirectUrl": obj.redirect_url,
            "projectName": obj.project_id,
        },
    )


def credential(obj: SourceCodeCredential) -> dict[str, Any]:
    """Who authorised what; tokens and SSH keys are never shown."""
    return _object(
        "SourceCodeCredential",
        obj.name,
        obj.project_id,
        obj.created,
        labels={f"{LABEL_PREFIX}sourcecodetype": obj.source_code_type},
        spec={
            "projectName": obj.project_id,
            "sourceCodeType": obj.source_code_type,
            "userName": obj.user.get_username() if obj.user_id else "",
            "loginName": obj.login_name,
            "displayName": obj.display_name,
            "avatarUrl": obj.avatar_url,
            "htmlUrl": obj.html_url,
            "expiry": rfc3339(obj.expiry),
        },
        status={},
    )


def repository(obj: SourceCodeRepository) -> dict[str, Any]:
    """Named by primary key (the model has no name of its own)."""
    return _object(
        "SourceCodeRepository",
        str(obj.pk),
        obj.project_id,
        None,
        spec={
            "projectName": obj.project_id,
            "sourceCodeType": obj.source_code_type,
            "sourceCodeCredentialName": obj.credential.name if obj.credential_id else "",
            "url": obj.url,
            "defaultBranch": obj.default_branch,
            "language": obj.language,
            "permissions": obj.permissions,
        },
        status={},
    )


# --- kinds: queryset (with the loads `render` needs) + renderer ----------------------


@dataclass(frozen=True)
class Kind:
    """One exportable kind: how to load it and how to render one object."""

    plural: str
    kind: str
    queryset: Callable[[], QuerySet]
    render: Callable[[Any], dict[str, Any]]
    project_field: str  # lookup that filters by project id


def executions_queryset() -> QuerySet:
    return PipelineExecution.objects.select_related("project", "pipeline", "trigger_user").prefetch_related(
        "stages", "steps"
    )


KINDS: dict[str, Kind] = {
    k.plural: k
    for k in (
        Kind("projects", "Project", lambda: Project.objects.all(), project, "pk"),
        Kind("pipelinesettings", "PipelineSetting", lambda: PipelineSetting.objects.all(), pipeline_setting, "project_id"),
        Kind(
            "pipelines",
            "Pipeline",
            lambda: Pipeline.objects.select_related("project", "credential"),
            pipeline,
            "project_id",
        ),
        Kind("pipelineexecutions", "PipelineExecution", executions_queryset, execution, "project_id"),
        Kind(
            "sourcecodeproviderconfigs",
            "SourceCodeProviderConfig",
            lambda: SourceCodeProviderConfig.objects.order_by("project_id", "type"),
            provider_config,
            "project_id",
        ),
        Kind(
            "sourcecodecredentials",
            "SourceCodeCredential",
            lambda: SourceCodeCredential.objects.select_related("user").order_by("project_id", "name"),
            credential,
            "project_id",
        ),
        Kind(
            "sourcecoderepositories",
            "SourceCodeRepository",
            lambda: SourceCodeRepository.objects.select_related("credential"),
            repository,
            "project_id",
        ),
        Kind("secrets", "Secret", lambda: Secret.objects.all(), secret, "project_id"),
    )
}

_RENDERERS: dict[type[Model], Callable[[Any], dict[str, Any]]] = {
    Project: project,
    ProjectMember: member,
    PipelineSetting: pipeline_setting,
    Secret: secret,
    Pipeline: pipeline,
    PipelineExecution: execution,
    SourceCodeProviderConfig: provider_config,
    SourceCodeCredential: credential,
    SourceCodeRepository: repository,
}


def render(obj: Model) -> dict[str, Any]:
    """Any Slipway object in CRD shape (dispatch on its model)."""
    return _RENDERERS[type(obj)](obj)


def iter_objects(plural: str, project_id: str | None = None, chunk_size: int = 500) -> Iterator[dict[str, Any]]:
    """Every object of a kind (optionally of one project), rendered, read `chunk_size` rows at a time.

    KeyError for an unknown kind. Memory stays bounded however many executions exist.
    """
    kind = KINDS[plural]
    qs = kind.queryset()
    if project_id is not None:
        qs = qs.filter(**{kind.project_field: project_id})
    for obj in qs.iterator(chunk_size=chunk_size):  # prefetches run per chunk
        yield kind.render(obj)


def objects(plural: str, project_id: str | None = None) -> list[dict[str, Any]]:
    """`iter_objects` as a list."""
    return list(iter_objects(plural, project_id))


# --- YAML ------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block style; multi-line strings (scripts, commit messages) as `|` literals."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


def to_yaml(data: Any) -> str:
    """Rendered objects as YAML, keys in rendering order."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False)
