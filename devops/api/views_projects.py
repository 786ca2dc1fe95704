"""Projects, their members, settings and secrets.

Who may write: members and settings — the owner; secrets — owner or member;
the project itself — created by anyone signed in (who becomes its owner),
renamed or deleted by its owner.
"""
from __future__ import annotations

from django.db import IntegrityError, transaction
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from devops.api import crd, schema
from devops.api.permissions import project_for, projects_of
from devops.api.serializers import (
    MemberRoleSerializer,
    MemberSerializer,
    ProjectCreateSerializer,
    ProjectUpdateSerializer,
    SecretCreateSerializer,
    SecretDataSerializer,
    SettingValueSerializer,
)
from devops.api.viewsets import ProjectScopedViewSet, refuse_while_running
from devops.controller.projects import do_create_project
from devops.models import DEFAULT_SETTINGS, PipelineSetting, Project, ProjectMember, Role, Secret

LAST_OWNER = "the project's last owner cannot be removed or demoted"


def check_owner_left(member: ProjectMember) -> None:
    """A project always keeps one owner: refuse to demote or remove the last (the API and the web UI)."""
    others = ProjectMember.objects.filter(project_id=member.project_id, role=Role.OWNER).exclude(pk=member.pk)
    if member.role == Role.OWNER and not others.exists():
        raise ValidationError({"role": [LAST_OWNER]})


class ProjectViewSet(viewsets.GenericViewSet):
    """The projects you are a member of. `{project}` is the project id (`p-xxxxx`)."""

    serializer_class = schema.ProjectObject
    queryset = Project.objects.all()
    lookup_url_kwarg = "project"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Project.objects.none()
        return projects_of(self.request.user).order_by("name")

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([crd.project(p) for p in page])

    @extend_schema(request=ProjectCreateSerializer, responses={201: schema.ProjectObject})
    def create(self, request):
        data = ProjectCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        name = data.validated_data["name"]
        if Project.objects.filter(name=name).exists():
            raise ValidationError({"name": [f"a project named {name!r} exists"]})
        project = do_create_project(name, owner=request.user, description=data.validated_data["description"])
        return Response(crd.project(project), status=status.HTTP_201_CREATED)

    def retrieve(self, request, project: str):
        return Response(crd.project(project_for(request, project, "read")))

    @extend_schema(request=ProjectUpdateSerializer, responses=schema.ProjectObject)
    def partial_update(self, request, project: str):
        obj = project_for(request, project, "owner")
        data = ProjectUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        for field, value in data.validated_data.items():
            setattr(obj, field, value)
        try:
            with transaction.atomic():
                obj.save()
        except IntegrityError:
            raise ValidationError({"name": ["a project with this name exists"]}) from None
        return Response(crd.project(obj))

    def destroy(self, request, project: str):
        obj = project_for(request, project, "owner")
        refuse_while_running(obj.executions.all())
        obj.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberViewSet(ProjectScopedViewSet):
    """Members and their roles (owner, member, read-only). `{user}` is a user name."""

    queryset = ProjectMember.objects.select_related("user").order_by("user__username")
    serializer_class = schema.MemberObject
    crd_render = staticmethod(crd.member)
    write_level = "owner"
    lookup_field = "user__username"
    lookup_url_kwarg = "user"

    def _check_owner_left(self, member: ProjectMember) -> None:
        check_owner_left(member)

    @extend_schema(request=MemberSerializer, responses={201: schema.MemberObject})
    def create(self, request, project: str):
        data = MemberSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = data.validated_data["user"]
        if self.get_queryset().filter(user=user).exists():
            raise ValidationError({"user": [f"{user.get_username()} is already a member"]})
        member = ProjectMember.objects.create(project=self.project, user=user, role=data.validated_data["role"])
        return Response(crd.member(member), status=status.HTTP_201_CREATED)

    @extend_schema(request=MemberRoleSerializer, responses=schema.MemberObject)
    def partial_update(self, request, project: str, user: str):
        member = self.get_object()
        data = MemberRoleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if data.validated_data["role"] != Role.OWNER:
            self._check_owner_left(member)
        member.role = data.validated_data["role"]
        member.save(update_fields=["role"])
        return Response(crd.member(member))

    def destroy(self, request, project: str, user: str):
        member = self.get_object()
        self._check_owner_left(member)
        member.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class SettingViewSet(ProjectScopedViewSet):
    """PipelineSettings: the seeded names only; the owner changes `value` ("" = default)."""

    queryset = PipelineSetting.objects.all()
    serializer_class = schema.PipelineSettingObject
    crd_render = staticmethod(crd.pipeline_setting)
    write_level = "owner"

    def get_object(self) -> PipelineSetting:
        """The row; a known name without one (added after the project was made) gets an unsaved row.

        Unknown names: 404.
        """
        name = self.kwargs["name"]
        setting = self.get_queryset().filter(name=name).first()
        if setting is None:
            if name not in DEFAULT_SETTINGS:
                raise NotFound(f"no setting {name!r}; settings: {', '.join(DEFAULT_SETTINGS)}")
            setting = PipelineSetting(project=self.project, name=name, value="", default=DEFAULT_SETTINGS[name][0])
        return setting

    @extend_schema(request=SettingValueSerializer, responses=schema.PipelineSettingObject)
    def partial_update(self, request, project: str, name: str):
        setting = self.get_object()
        data = SettingValueSerializer(data=request.data, context={"setting_name": setting.name, "superuser": request.user.is_superuser})
        data.is_valid(raise_exception=True)
        setting.value = data.validated_data["value"]
        setting.save()
        return Response(crd.pipeline_setting(setting))


class SecretViewSet(ProjectScopedViewSet):
    """Project secrets: names and keys are readable, values are write-only."""

    queryset = Secret.objects.all()
    serializer_class = schema.SecretObject
    crd_render = staticmethod(crd.secret)

    @extend_schema(request=SecretCreateSerializer, responses={201: schema.SecretObject})
    def create(self, request, project: str):
        data = SecretCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        name = data.validated_data["name"]
        if self.get_queryset().filter(name=name).exists():
            raise ValidationError({"name": [f"a secret named {name!r} exists; PUT or PATCH it"]})
        secret = Secret.objects.create(project=self.project, name=name, data=data.validated_data["data"])
        return Response(crd.secret(secret), status=status.HTTP_201_CREATED)

    def _write(self, request, *, merge: bool) -> Response:
        secret = self.get_object()
        data = SecretDataSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        secret.data = {**secret.data, **data.validated_data["data"]} if merge else data.validated_data["data"]
        secret.save()
        return Response(crd.secret(secret))

    @extend_schema(request=SecretDataSerializer, responses=schema.SecretObject, description="Replace every key.")
    def update(self, request, project: str, name: str):
        return self._write(request, merge=False)

    @extend_schema(request=SecretDataSerializer, responses=schema.SecretObject, description="Add or change keys.")
    def partial_update(self, request, project: str, name: str):
        return self._write(request, merge=True)

    def destroy(self, request, project: str, name: str):
        self.get_object().delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

