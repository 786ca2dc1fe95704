"""Input serializers (what the API accepts) and the CRD shape for the schema.

Output is always rendered by `devops.api.crd`; the `CRD*` serializers here
only describe that shape in the OpenAPI schema. Input serializers name every
bad field in their 400 answers (DRF's `{"field": ["message"]}`).
"""
from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from devops.api import validation
from devops.models import Role
from devops.triggers.image_webhooks import IMAGE_WEBHOOKS

# --- the CRD shape (schema only) -------------------------------------------------------


class CRDMetadataSerializer(serializers.Serializer):
    name = serializers.CharField()
    namespace = serializers.CharField(help_text="the project id (a Project: its cluster)")
    labels = serializers.DictField(child=serializers.CharField())
    creationTimestamp = serializers.DateTimeField(allow_null=True, help_text="RFC 3339, UTC")


class CRDObjectSerializer(serializers.Serializer):
    """Any object in CRD shape; `spec` and `status` use Rancher's field names per kind."""

    apiVersion = serializers.CharField(default="project.slipway.io/v3")
    kind = serializers.CharField()
    metadata = CRDMetadataSerializer()
    spec = serializers.DictField()
    status = serializers.DictField(required=False)


# --- input -----------------------------------------------------------------------------


def _printable_name(value: str) -> str:
    # as `project create`: control characters would break `project list` and logs
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise serializers.ValidationError("a project name holds printable characters only")
    return value


class ProjectCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, validators=[_printable_name])
    description = serializers.CharField(required=False, allow_blank=True, default="")


class ProjectUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False, validators=[_printable_name])
    description = serializers.CharField(required=False, allow_blank=True)


class MemberSerializer(serializers.Serializer):
    user = serializers.CharField(help_text="user name")
    role = serializers.ChoiceField(choices=Role.choices)

    def validate_user(self, value: str):
        user = get_user_model().objects.filter(username=value).first()
        if user is None:
            raise serializers.ValidationError(f"no user named {value!r}")
        return user


class MemberRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class SettingValueSerializer(serializers.Serializer):
    value = serializers.CharField(allow_blank=True, max_length=1024, help_text='"" restores the default')

    def validate_value(self, value: str) -> str:
        try:
            return validation.check_setting(self.context["setting_name"], value,
                                            superuser=bool(self.context.get("superuser")))
        except ValueError as exc:  # named as `project setting` names it
            raise serializers.ValidationError(f"{self.context['setting_name']}: {exc}") from None


class SecretDataField(serializers.DictField):
    """`{key: value}` strings; write-only everywhere."""

    def __init__(self, **kwargs):
        super().__init__(child=serializers.CharField(allow_blank=True, trim_whitespace=False), **kwargs)

    def to_internal_value(self, data):
        try:
            return validation.check_secret_data(data)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None


class SecretCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=253)
    data = SecretDataField(write_only=True)

    def validate_name(self, value: str) -> str:
        try:
            return validation.check_secret_name(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None


class SecretDataSerializer(serializers.Serializer):
    data = SecretDataField(write_only=True)


class ImageWebHookSerializer(serializers.Serializer):
    """Rancher's imageWebHookToken entry; `token` is write-only."""

    branches = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    comment = serializers.CharField(required=False, allow_blank=True, default="")
    imageType = serializers.ChoiceField(choices=IMAGE_WEBHOOKS.choices())
    token = serializers.CharField(required=False, allow_blank=True, write_only=True)
    triggerImage = serializers.CharField()


class PipelineSpecSerializer(serializers.Serializer):
    """The writable part of a Pipeline's `spec` (Rancher's field names)."""

    repositoryUrl = serializers.CharField(max_length=1024)
    displayName = serializers.CharField(max_length=255, required=False, allow_blank=True)
    defaultBranch = serializers.CharField(max_length=255, required=False)
    sourceCodeCredentialName = serializers.CharField(required=False, allow_blank=True)
    triggerWebhookPush = serializers.BooleanField(required=False)
    triggerWebhookPr = serializers.BooleanField(required=False)
    triggerWebhookTag = serializers.BooleanField(required=False)
    imageWebHookToken = ImageWebHookSerializer(many=True, required=False)
    # Generic Git polling (devops/controller/polling.py): at least a minute apart, at most a day.
    pollInterval = serializers.IntegerField(required=False, min_value=0, max_value=86400)
    pollBranches = serializers.ListField(child=serializers.CharField(max_length=255), required=False,
                                         max_length=50)

    def validate_pollInterval(self, value: int) -> int:
        if 0 < value < 60:
            raise serializers.ValidationError("0 (off) or at least 60 seconds")
        return value

    def validate_repositoryUrl(self, value: str) -> str:
        try:
            value = validation.check_repository_url(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None
        # file:// reads any repository on the Slipway host (other projects'
        # mirrors included), so only an administrator may point a pipeline there.
        user = getattr(self.context.get("request"), "user", None)
        if value.lower().startswith("file:") and not getattr(user, "is_superuser", False):
            raise serializers.ValidationError(
                "file:// repositories on the Slipway host are for administrators; use a remote Git URL"
            )
        return value

    def validate_defaultBranch(self, value: str) -> str:
        if value.startswith("-") or any(c.isspace() or c in "~^:?*[\\" for c in value) or ".." in value:
            raise serializers.ValidationError(f"{value!r} is not a valid branch name")
        return value


class PipelineWriteSerializer(serializers.Serializer):
    """`{"metadata": {"name": ...}?, "spec": {...}}` — the CRD shape a client read."""

    metadata = serializers.DictField(required=False)
    spec = PipelineSpecSerializer()


class LintRequestSerializer(serializers.Serializer):
    yaml = serializers.CharField(allow_blank=True, trim_whitespace=False)
    filename = serializers.CharField(required=False, default=".devops.yml")


class ProblemSerializer(serializers.Serializer):
    path = serializers.CharField(allow_blank=True)
    line = serializers.IntegerField(allow_null=True)
    column = serializers.IntegerField(allow_null=True)
    severity = serializers.ChoiceField(choices=["error", "warning"])
    message = serializers.CharField()


class LintResponseSerializer(serializers.Serializer):
    ok = serializers.BooleanField(help_text="no problem of severity error")
    problems = ProblemSerializer(many=True)


class EditRequestSerializer(serializers.Serializer):
    yaml = serializers.CharField(allow_blank=True, trim_whitespace=False, help_text="the file as it is")
    config = serializers.JSONField(help_text="the new pipeline data (the file's structure, as JSON)")


class EditResponseSerializer(serializers.Serializer):
    yaml = serializers.CharField(help_text="the new file, comments and key order kept")
    problems = ProblemSerializer(many=True)
