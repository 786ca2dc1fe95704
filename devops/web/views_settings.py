"""The project's settings page: members and roles, settings, secrets, registry credentials, caches,
the built-in registry's repositories and tags.

Every write uses the rule the API uses for it (`devops.api.validation`, its
serializers, `check_owner_left`, `devops.api.caches`); levels as in the API:
members and settings need the owner, secrets, registry credentials and caches
a member (write), reading any of it a read-only member.
"""
from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST
from rest_framework.exceptions import ValidationError as DRFValidationError

from devops.api import caches as cache_index
from devops.api.views_caches import RegistryCredentialSerializer
from devops.api.views_projects import check_owner_left
from devops.models import (
    DEFAULT_SETTINGS,
    PipelineSetting,
    ProjectMember,
    RegistryCredential,
    Secret,
)
from devops.web.access import project_for
from devops.web.forms import MemberForm, RegistryCredentialForm, SecretForm, setting_error
from devops.web.views_notify import notifier_context


def _settings_url(project, anchor: str = "") -> str:
    return reverse("web:settings", args=[project.id]) + (f"#{anchor}" if anchor else "")


def _setting_rows(project) -> list[PipelineSetting]:
    """Every known setting, a seeded row or an unsaved one for a name added after the project was made."""
    rows = {s.name: s for s in project.settings.all()}
    return [rows.get(name) or PipelineSetting(project=project, name=name, value="", default=default)
            for name, (default, _meaning) in DEFAULT_SETTINGS.items()]


def _registry(project) -> dict:
    """The project's repositories (`<project id>/...`) in the built-in registry and their tags,
    or why there are none. Other projects' images are not theirs to see."""
    from devops.registry import server
    from devops.registry.tokens import in_namespace, namespace

    info = server.registry_info(settings.DATA_DIR)
    if info is None:
        return {"error": "The built-in registry has not been started yet (it starts with the controller)."}
    try:
        return {"address": info.address, "namespace": namespace(project.id),
                "repositories": [(repo, server.tags(info, repo)) for repo in server.catalog(info)
                                 if in_namespace(project.id, repo)]}
    except server.RegistryError as exc:
        return {"address": info.address, "error": str(exc)}


@login_required
def project_settings(request: HttpRequest, project: str, *, errors: dict | None = None,
                     status: int = 200, forms: dict | None = None) -> TemplateResponse:
    proj = project_for(request, project)
    forms = forms or {}
    context = {
        "project": proj,
        "members": proj.members.select_related("user").order_by("user__username"),
        "settings_rows": _setting_rows(proj),
        "secrets": Secret.objects.filter(project=proj).order_by("name"),
        "registry_credentials": RegistryCredential.objects.filter(project=proj).order_by("host"),
        "caches": cache_index.list_caches(proj),
        "registry": _registry(proj),
        "setting_errors": errors or {},
        "member_form": forms.get("member") or MemberForm(),
        "secret_form": forms.get("secret") or SecretForm(),
        "registry_form": forms.get("registry") or RegistryCredentialForm(),
        **notifier_context(proj, forms.get("notifier")),  # views_notify.py
    }
    return TemplateResponse(request, "web/settings.html", context, status=status)


@login_required
@require_POST
def setting(request: HttpRequest, project: str, name: str) -> TemplateResponse | HttpResponseRedirect:
    """Change one setting (owner); the value is checked by the API's SettingValueSerializer."""
    proj = project_for(request, project, "owner")
    if name not in DEFAULT_SETTINGS:
        raise Http404("No such setting.")
    row = proj.settings.filter(name=name).first() or PipelineSetting(
        project=proj, name=name, value="", default=DEFAULT_SETTINGS[name][0])
    value, error = setting_error(name, request.POST.get("value", ""), superuser=request.user.is_superuser)
    if error is None:
        row.value = value
        row.save()
    if request.htmx:
        if error is not None:
            row.value = value  # show what was typed beside the message; not saved
        return TemplateResponse(request, "web/settings.html#setting-row",
                                {"project": proj, "s": row, "error": error, "saved": error is None})
    if error is not None:
        return project_settings(request, project, errors={name: (value, error)}, status=400)
    messages.success(request, f"{name} saved.")
    return HttpResponseRedirect(_settings_url(proj, "settings"))


@login_required
@require_POST
def member_add(request: HttpRequest, project: str):
    proj = project_for(request, project, "owner")
    form = MemberForm(request.POST)
    if form.is_valid():
        user = get_user_model().objects.filter(username=form.cleaned_data["user"]).first()
        if user is None:
            form.add_error("user", f"no user named {form.cleaned_data['user']!r}")
        elif proj.members.filter(user=user).exists():
            form.add_error("user", f"{user.get_username()} is already a member")
        else:
            ProjectMember.objects.create(project=proj, user=user, role=form.cleaned_data["role"])
            messages.success(request, f"{user.get_username()} added as {form.cleaned_data['role']}.")
            return HttpResponseRedirect(_settings_url(proj, "members"))
    return project_settings(request, project, forms={"member": form}, status=400)


@login_required
@require_POST
def member(request: HttpRequest, project: str, user: str):
    """Change a member's role, or remove them (`remove` in the form); the last owner stays."""
    proj = project_for(request, project, "owner")
    row = get_object_or_404(ProjectMember.objects.select_related("user"), project=proj, user__username=user)
    remove = "remove" in request.POST
    role = request.POST.get("role", "")
    try:
        if remove or role != "owner":
            check_owner_left(row)
    except DRFValidationError as exc:
        messages.error(request, f"{user}: {exc.detail['role'][0]}")
        return HttpResponseRedirect(_settings_url(proj, "members"))
    if remove:
        row.delete()
        messages.success(request, f"{user} removed.")
    elif role in ("owner", "member", "read-only"):
        row.role = role
        row.save(update_fields=["role"])
        messages.success(request, f"{user} is now {role}.")
    return HttpResponseRedirect(_settings_url(proj, "members"))


@login_required
@require_POST
def secret_set(request: HttpRequest, project: str):
    """Add a secret or one key of it; values are write-only (never shown again)."""
    proj = project_for(request, project, "write")
    form = SecretForm(request.POST)
    if not form.is_valid():
        return project_settings(request, project, forms={"secret": form}, status=400)
    data = form.cleaned_data
    row, _created = Secret.objects.get_or_create(project=proj, name=data["name"], defaults={"data": {}})
    row.data = {**row.data, data["key"]: data.get("value") or ""}
    row.save()
    messages.success(request, f"Secret {row.name}: key {data['key']} saved.")
    return HttpResponseRedirect(_settings_url(proj, "secrets"))


@login_required
@require_POST
def secret_delete(request: HttpRequest, project: str, name: str):
    proj = project_for(request, project, "write")
    get_object_or_404(Secret, project=proj, name=name).delete()
    messages.success(request, f"Secret {name} deleted.")
    return HttpResponseRedirect(_settings_url(proj, "secrets"))


@login_required
@require_POST
def registry_credential_set(request: HttpRequest, project: str):
    """Add or replace the credential of a registry host (the API's serializer checks the host)."""
    proj = project_for(request, project, "write")
    form = RegistryCredentialForm(request.POST)
    if form.is_valid():
        ser = RegistryCredentialSerializer(data=form.cleaned_data)
        if ser.is_valid():
            RegistryCredential.objects.update_or_create(
                project=proj, host=ser.validated_data["host"],
                defaults={"username": ser.validated_data["username"], "password": ser.validated_data["password"]})
            messages.success(request, f"Credential for {ser.validated_data['host']} saved.")
            return HttpResponseRedirect(_settings_url(proj, "registry-credentials"))
        for field, msgs in ser.errors.items():
            form.add_error(field if field in form.fields else None, "; ".join(str(m) for m in msgs))
    return project_settings(request, project, forms={"registry": form}, status=400)


@login_required
@require_POST
def registry_credential_delete(request: HttpRequest, project: str, pk: int):
    proj = project_for(request, project, "write")
    get_object_or_404(RegistryCredential, project=proj, pk=pk).delete()
    messages.success(request, "Registry credential deleted.")
    return HttpResponseRedirect(_settings_url(proj, "registry-credentials"))


@login_required
@require_POST
def caches_clear(request: HttpRequest, project: str):
    """Clear all caches, one pipeline's, or one cache (`pipeline`, `key` in the form), as the API's DELETE."""
    proj = project_for(request, project, "write")
    pipeline = request.POST.get("pipeline") or None
    key = request.POST.get("key") or None
    if key and not pipeline:
        key = None
    removed = cache_index.clear_caches(proj, pipeline, key)
    messages.success(request, f"{removed} cache{'s' if removed != 1 else ''} cleared.")
    return HttpResponseRedirect(_settings_url(proj, "caches"))
