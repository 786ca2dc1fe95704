"""API: a project's caches (list, clear) and its registry credentials (write-only).

    GET    /api/v1/projects/{project}/caches[/{pipeline}]          read level
    DELETE /api/v1/projects/{project}/caches[/{pipeline}[/{key}]]  write level
    GET    /api/v1/projects/{project}/registrycredentials           read level (no passwords)
    POST   /api/v1/projects/{project}/registrycredentials           write level; {host, username, password}
    DELETE /api/v1/projects/{project}/registrycredentials/{id}      write level
"""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from devops.api import caches as index
from devops.api.permissions import project_for
from devops.models import Pipeline, RegistryCredential


def _check_pipeline(project, pipeline: str | None) -> None:
    if pipeline is not None and not Pipeline.objects.filter(project=project, name=pipeline).exists():
        raise NotFound("No such pipeline in this project.")


class CacheSerializer(serializers.Serializer):
    pipeline = serializers.CharField()
    path = serializers.CharField()
    key = serializers.CharField(help_text="directory name of the cache; DELETE .../caches/{pipeline}/{key}")
    size = serializers.IntegerField(help_text="bytes")
    sizeHuman = serializers.CharField()
    lastUsed = serializers.DateTimeField(allow_null=True)
    saved = serializers.DateTimeField(allow_null=True)
    hits = serializers.IntegerField()
    misses = serializers.IntegerField()
    generation = serializers.IntegerField()


class CacheListSerializer(serializers.Serializer):
    items = CacheSerializer(many=True)
    totalSize = serializers.IntegerField()


class RemovedSerializer(serializers.Serializer):
    removed = serializers.IntegerField()


def _caches(request: Request, project: str, pipeline: str | None, key: str | None) -> Response:
    level = "read" if request.method == "GET" else "write"
    proj = project_for(request, project, level)
    _check_pipeline(proj, pipeline)
    if request.method == "DELETE":
        removed = index.clear_caches(proj, pipeline, key)
        if key is not None and removed == 0:
            raise NotFound("No such cache.")
        return Response({"removed": removed})
    items = [index.cache_json(i) for i in index.list_caches(proj, pipeline)]
    return Response({"items": items, "totalSize": sum(i["size"] for i in items)})


@extend_schema(methods=["GET"], operation_id="project_caches_list", responses=CacheListSerializer)
@extend_schema(methods=["DELETE"], operation_id="project_caches_clear", responses=RemovedSerializer)
@api_view(["GET", "DELETE"])
def caches(request: Request, project: str) -> Response:
    """The project's caches (read level); DELETE clears them all (write level)."""
    return _caches(request, project, None, None)


@extend_schema(methods=["GET"], operation_id="pipeline_caches_list", responses=CacheListSerializer)
@extend_schema(methods=["DELETE"], operation_id="pipeline_caches_clear", responses=RemovedSerializer)
@api_view(["GET", "DELETE"])
def pipeline_caches(request: Request, project: str, pipeline: str) -> Response:
    """One pipeline's caches; DELETE clears them."""
    return _caches(request, project, pipeline, None)


@extend_schema(operation_id="cache_clear", responses=RemovedSerializer)
@api_view(["DELETE"])
def cache(request: Request, project: str, pipeline: str, key: str) -> Response:
    """Clear one cache (write level)."""
    return _caches(request, project, pipeline, key)


class RegistryCredentialSerializer(serializers.ModelSerializer):
    password = serializers.CharField(write_only=True, trim_whitespace=False, max_length=4096)

    class Meta:
        model = RegistryCredential
        fields = ["id", "host", "username", "password", "created", "updated"]
        read_only_fields = ["id", "created", "updated"]

    def validate_host(self, value: str) -> str:
        host = value.strip().removeprefix("https://").removeprefix("http://").rstrip("/")
        if not host or "/" in host or " " in host:
            raise serializers.ValidationError("a registry host such as harbor.example.com or 10.0.0.5:5000")
        return "docker.io" if host == "index.docker.io" else host


class RegistryCredentialListSerializer(serializers.Serializer):
    items = RegistryCredentialSerializer(many=True)


@extend_schema(methods=["GET"], operation_id="registry_credentials_list",
               responses=RegistryCredentialListSerializer)
@extend_schema(methods=["POST"], operation_id="registry_credentials_set", request=RegistryCredentialSerializer,
               responses=RegistryCredentialSerializer)
@api_view(["GET", "POST"])
def registry_credentials(request: Request, project: str) -> Response:
    proj = project_for(request, project, "read" if request.method == "GET" else "write")
    if request.method == "GET":
        rows = RegistryCredential.objects.filter(project=proj)
        return Response({"items": RegistryCredentialSerializer(rows, many=True).data})
    ser = RegistryCredentialSerializer(data=request.data)
    ser.is_valid(raise_exception=True)
    row, created = RegistryCredential.objects.update_or_create(
        project=proj, host=ser.validated_data["host"],
        defaults={"username": ser.validated_data["username"], "password": ser.validated_data["password"]},
    )
    return Response(RegistryCredentialSerializer(row).data,
                    status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


@extend_schema(operation_id="registry_credential_delete", responses={204: None})
@api_view(["DELETE"])
def registry_credential(request: Request, project: str, pk: int) -> Response:
    proj = project_for(request, project, "write")
    deleted, _ = RegistryCredential.objects.filter(project=proj, pk=pk).delete()
    if not deleted:
        raise NotFound("No such registry credential.")
    return Response(status=status.HTTP_204_NO_CONTENT)
