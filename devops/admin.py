"""Every model in the Django admin; encrypted fields are never shown."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from devops import models as m
from devops.api import validation
from devops.api.viewsets import busy_executions


class RefuseBusyDelete:
    """No delete in the admin while an execution below runs or its stop is pending (the API's 409)."""

    @staticmethod
    def executions_of(obj):
        raise NotImplementedError

    def has_delete_permission(self, request, obj=None):
        if obj is not None and any(busy_executions(self.executions_of(obj))):
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request, queryset):
        busy = [obj.pk for obj in queryset if any(busy_executions(self.executions_of(obj)))]
        if busy:
            messages.error(request, f"{len(busy)} not deleted: an execution is running or its stop is pending")
        super().delete_queryset(request, queryset.exclude(pk__in=busy))


class MemberInline(admin.TabularInline):
    model = m.ProjectMember
    extra = 0


class SettingForm(forms.ModelForm):
    """The admin writes rows directly: the same rules as the API and `project setting`,
    so no value reaches the engine that it cannot apply."""

    class Meta:
        model = m.PipelineSetting
        fields = "__all__"

    def clean(self):
        data = super().clean()
        name = data.get("name", "")
        try:
            data["value"] = validation.check_setting(name, data.get("value", ""))
        except KeyError:
            self.add_error("name", f"unknown setting {name!r}")
        except ValueError as exc:
            self.add_error("value", f"{name}: {exc}")
        return data


class SettingInline(admin.TabularInline):
    model = m.PipelineSetting
    form = SettingForm
    extra = 0


@admin.register(m.Project)
class ProjectAdmin(RefuseBusyDelete, admin.ModelAdmin):
    executions_of = staticmethod(lambda obj: obj.executions.all())
    list_display = ("id", "name", "cluster_id", "created")
    search_fields = ("id", "name")
    inlines = [MemberInline, SettingInline]


@admin.register(m.ProjectMember)
class ProjectMemberAdmin(admin.ModelAdmin):
    list_display = ("project", "user", "role")
    list_filter = ("role",)


@admin.register(m.PipelineSetting)
class PipelineSettingAdmin(admin.ModelAdmin):
    form = SettingForm
    list_display = ("project", "name", "value", "default")
    list_filter = ("name",)


@admin.register(m.Secret)
class SecretAdmin(admin.ModelAdmin):
    list_display = ("project", "name", "updated")
    # Values are write-only: the admin shows the secret exists, not its data.
    exclude = ("data",)


@admin.register(m.SourceCodeProviderConfig)
class ProviderConfigAdmin(admin.ModelAdmin):
    list_display = ("project", "type", "enabled", "hostname")
    exclude = ("client_secret",)


@admin.register(m.SourceCodeCredential)
class CredentialAdmin(admin.ModelAdmin):
    list_display = ("project", "name", "source_code_type", "login_name")
    exclude = ("access_token", "refresh_token", "ssh_private_key")


@admin.register(m.SourceCodeRepository)
class RepositoryAdmin(admin.ModelAdmin):
    list_display = ("project", "url", "default_branch", "language")


@admin.register(m.Pipeline)
class PipelineAdmin(RefuseBusyDelete, admin.ModelAdmin):
    executions_of = staticmethod(lambda obj: obj.executions.all())
    list_display = ("name", "project", "repository_url", "last_run_state", "next_run")
    search_fields = ("name", "repository_url", "display_name")
    # Webhook tokens are write-only (as in the API); image webhooks carry tokens
    # too and are edited through the API (which keeps a token it is not sent).
    exclude = ("webhook_token", "image_webhooks")


# State changes only through the do_* actions (devops/controller/actions/): the
# admin shows execution, stage and step state and what the controller keeps
# with it, never lets anyone edit it.
EXECUTION_STATE_FIELDS = (
    "execution_state", "started", "ended", "conditions", "node", "engine", "engine_handle", "error",
    "abort_requested", "controller_node", "unit_error", "unit_attempts", "unit_retry_at",
)
STEP_STATE_FIELDS = ("state", "started", "ended", "exit_code", "message", "runtime", "attempts", "handle",
                     "image_digest", "log_size")


class StageInline(admin.TabularInline):
    model = m.StageStatus
    extra = 0
    readonly_fields = ("state", "started", "ended")
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # stage rows are made with their execution (do_run)


@admin.register(m.PipelineExecution)
class ExecutionAdmin(RefuseBusyDelete, admin.ModelAdmin):
    executions_of = staticmethod(lambda obj: m.PipelineExecution.objects.filter(pk=obj.pk))
    list_display = ("name", "project", "execution_state", "branch", "event", "started", "ended")
    list_filter = ("execution_state", "event")
    search_fields = ("name", "commit", "branch")
    inlines = [StageInline]
    readonly_fields = EXECUTION_STATE_FIELDS

    def has_add_permission(self, request) -> bool:
        return False  # executions are made by do_run / do_rerun (run number, stage and step rows)


@admin.register(m.StepStatus)
class StepStatusAdmin(admin.ModelAdmin):
    list_display = ("execution", "stage_index", "index", "state", "exit_code", "runtime")
    readonly_fields = STEP_STATE_FIELDS

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(m.ControllerNode)
class ControllerNodeAdmin(admin.ModelAdmin):
    list_display = ("name", "heartbeat_at")
    readonly_fields = ("name", "heartbeat_at")
