"""The CRD shape of each kind, for the OpenAPI schema only.

`devops.api.crd` renders the objects; these serializers describe what it
renders so /api/docs/ shows each kind's `spec` and `status` fields. They are
never used to produce output: `tests/api/test_schema_auth.py` checks that
what crd.py renders has exactly the documented keys.
"""
from __future__ import annotations

from rest_framework import serializers as s

from devops.api.serializers import CRDMetadataSerializer

_str = s.CharField
_opt_time = s.DateTimeField  # RFC 3339 strings in UTC, or null


def _time() -> s.DateTimeField:
    return _opt_time(allow_null=True, help_text="RFC 3339, UTC")


def crd_schema(kind: str, spec: dict[str, s.Field], status: dict[str, s.Field] | None = None) -> type[s.Serializer]:
    """A serializer class named `<kind>Object` documenting one kind's CRD shape."""

    def part(name: str, fields: dict[str, s.Field]) -> s.Serializer:
        # "PipelineCRDSpec": distinct from the input serializers' component names.
        return type(f"{kind}CRD{name}", (s.Serializer,), {**fields, "__module__": __name__})()

    attrs: dict[str, object] = {
        "apiVersion": _str(default="project.slipway.io/v3"),
        "kind": s.ChoiceField(choices=[kind]),
        "metadata": CRDMetadataSerializer(),
        "spec": part("Spec", spec),
        "__doc__": f"A {kind} in CRD shape.",
        "__module__": __name__,
    }
    if status is not None:
        attrs["status"] = part("Status", status)
    return type(f"{kind}Object", (s.Serializer,), attrs)


ProjectObject = crd_schema(
    "Project",
    {"displayName": _str(), "description": _str(), "clusterName": _str()},
    {},
)
MemberObject = crd_schema(
    "ProjectMember", {"userName": _str(), "role": _str(), "projectName": _str()}
)
PipelineSettingObject = crd_schema(
    "PipelineSetting",
    {"value": _str(help_text='"" = not set'), "default": _str(), "description": _str(), "projectName": _str()},
    {"effective": _str(), "customized": s.BooleanField()},
)
SecretObject = crd_schema(
    "Secret",
    {"keys": s.ListField(child=_str(), help_text="key names; values are write-only")},
    {"updated": _time()},
)
PipelineObject = crd_schema(
    "Pipeline",
    {
        "displayName": _str(),
        "projectName": _str(help_text="cluster:project"),
        "repositoryUrl": _str(),
        "defaultBranch": _str(),
        "sourceCodeCredentialName": _str(),
        "triggerWebhookPush": s.BooleanField(),
        "triggerWebhookPr": s.BooleanField(),
        "triggerWebhookTag": s.BooleanField(),
        "imageWebHookToken": s.ListField(child=s.DictField(), help_text="branches, comment, imageType, triggerImage"),
        "pollInterval": s.IntegerField(help_text="generic Git polling every N seconds; 0 = off"),
        "pollBranches": s.ListField(child=_str(), help_text="branch globs polling watches; none = defaultBranch"),
    },
    {
        "pipelineState": _str(),
        "nextRun": s.IntegerField(),
        "lastExecutionId": _str(),
        "lastRunState": _str(),
        "lastStarted": _time(),
        "webHookId": _str(),
        "executionScheduledInfo": s.ListField(child=s.DictField()),
    },
)


class StepStatusSchema(s.Serializer):
    name = _str()
    state = _str()
    started = _time()
    ended = _time()
    exitCode = s.IntegerField(allow_null=True)
    message = _str()


class StageStatusSchema(s.Serializer):
    name = _str()
    state = _str()
    started = _time()
    ended = _time()
    steps = StepStatusSchema(many=True)


PipelineExecutionObject = crd_schema(
    "PipelineExecution",
    {
        "projectName": _str(),
        "pipelineName": _str(help_text="project:pipeline"),
        "run": s.IntegerField(),
        "triggeredBy": _str(help_text="user | webhook | poll | cron | image"),
        "triggerUserName": _str(),
        "repositoryUrl": _str(),
        "branch": _str(),
        "ref": _str(),
        "commit": _str(),
        "event": _str(help_text='push | pull_request | tag | "" (manual)'),
        "message": _str(),
        "author": _str(),
        "email": _str(),
        "temporaryConfig": s.BooleanField(),
        "pipelineConfig": s.DictField(help_text="the pipeline config this run used"),
    },
    {
        "executionState": _str(),
        "started": _time(),
        "ended": _time(),
        "conditions": s.ListField(child=s.DictField()),
        "node": _str(),
        "engine": _str(),
        "error": _str(),
        "stages": StageStatusSchema(many=True),
    },
)
SourceCodeCredentialObject = crd_schema(
    "SourceCodeCredential",
    {
        "projectName": _str(),
        "sourceCodeType": _str(),
        "userName": _str(),
        "loginName": _str(),
        "displayName": _str(),
        "avatarUrl": _str(),
        "htmlUrl": _str(),
        "expiry": _time(),
    },
    {},
)
SourceCodeRepositoryObject = crd_schema(
    "SourceCodeRepository",
    {
        "projectName": _str(),
        "sourceCodeType": _str(),
        "sourceCodeCredentialName": _str(),
        "url": _str(),
        "defaultBranch": _str(),
        "language": _str(),
        "permissions": s.DictField(),
    },
    {},
)
SourceCodeProviderConfigObject = crd_schema(
    "SourceCodeProviderConfig",
    {
        "type": _str(),
        "enabled": s.BooleanField(),
        "hostname": _str(),
        "tls": s.BooleanField(),
        "clientId": _str(),
        "redirectUrl": _str(),
        "projectName": _str(),
    },
)

# kind -> schema, for the test that keeps crd.py and these in step.
BY_KIND: dict[str, type[s.Serializer]] = {
    cls.__name__.removesuffix("Object"): cls
    for cls in (
        ProjectObject,
        MemberObject,
        PipelineSettingObject,
        SecretObject,
        PipelineObject,
        PipelineExecutionObject,
        SourceCodeCredentialObject,
        SourceCodeRepositoryObject,
        SourceCodeProviderConfigObject,
    )
}
