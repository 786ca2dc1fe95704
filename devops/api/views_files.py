"""Pipeline files through the API: `POST lint` and `POST pipelinefiles/edit` (the editor uses both).

Neither touches a project: they only read the text they are sent, so any
signed-in user may call them (lint's `?project=` reads that project's
notifier names, for its members only). The work is `devops.pipeline`'s (`lint`,
`apply_edit`); this module only moves text in and problems out.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from devops.api.parsers import JSONParser, nests_deeper_than
from devops.api.permissions import project_for
from devops.api.serializers import (
    EditRequestSerializer,
    EditResponseSerializer,
    LintRequestSerializer,
    LintResponseSerializer,
)
from devops.models import Notifier
from devops.pipeline import EditError, apply_edit, lint
from devops.pipeline.yamltree import MAX_DEPTH


class PlainTextParser(BaseParser):
    """The body as text (UTF-8); too large or not UTF-8 is a 400 naming `yaml`.

    Reads at most DATA_UPLOAD_MAX_MEMORY_SIZE + 1 bytes, so a huge body costs
    no memory (the linter's own limit, 1 MiB, is below it and reported as a problem).
    """

    media_type = "text/plain"

    def parse(self, stream, media_type=None, parser_context=None) -> str:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2_621_440
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise ValidationError({"yaml": [f"the body is larger than {limit} bytes"]})
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError({"yaml": ["the body is not UTF-8 text"]}) from None


class YAMLTextParser(PlainTextParser):
    media_type = "application/x-yaml"


class YAMLParser(PlainTextParser):
    media_type = "application/yaml"


def problem_json(problem: Any) -> dict[str, Any]:
    """A `devops.pipeline.Problem` as the JSON the editor reads."""
    severity = getattr(problem, "severity", "error")
    return {
        "path": getattr(problem, "path", "") or "",
        "line": getattr(problem, "line", None),
        "column": getattr(problem, "column", None),
        "severity": str(getattr(severity, "value", severity)),
        "message": str(getattr(problem, "message", problem)),
    }


def lint_text(text: str, filename: str, notifiers: set[str] | None = None) -> tuple[bool, list[dict[str, Any]]]:
    """(ok, problems): ok when no problem is an error; `notifiers`: see `devops.pipeline.load`."""

    problems = [problem_json(p) for p in lint(text, filename=filename, notifiers=notifiers)]
    return not any(p["severity"] == "error" for p in problems), problems


LINT_EXAMPLE = "stages:\n- name: Build\n  steps:\n  - runScriptConfig:\n      image: busybox\n      shellScript: make\n"


class LintView(APIView):
    """Lint a pipeline file: every problem with its field path, line and column."""

    parser_classes = (JSONParser, PlainTextParser, YAMLTextParser, YAMLParser)

    @extend_schema(
        request={
            "application/json": LintRequestSerializer,
            "text/plain": {"type": "string"},
            "application/x-yaml": {"type": "string"},
        },
        responses=LintResponseSerializer,
        examples=[OpenApiExample("a file", value=LINT_EXAMPLE, request_only=True, media_type="text/plain")],
        description="Body: the YAML text (text/plain or application/x-yaml), or JSON `{\"yaml\": \"...\"}`. "
        "`?filename=` (or JSON `filename`) names the file in messages. `?project=<id>` (a member's "
        "project) also checks each `notification.recipients[].notifier` against the project's notifiers.",
    )
    def post(self, request: Request) -> Response:
        filename = request.query_params.get("filename", ".devops.yml")
        if isinstance(request.data, str):
            text = request.data
        else:
            data = LintRequestSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            text = data.validated_data["yaml"]
            filename = request.query_params.get("filename") or data.validated_data["filename"]
        notifiers = None
        if request.query_params.get("project"):
            project = project_for(request, request.query_params["project"], "read")
            notifiers = set(Notifier.objects.filter(project=project).values_list("name", flat=True))
        ok, problems = lint_text(text, filename, notifiers)
        return Response({"ok": ok, "problems": problems})


class EditView(APIView):
    """Write new pipeline data into a file, keeping its comments and key order."""

    parser_classes = (JSONParser,)

    @extend_schema(request=EditRequestSerializer, responses=EditResponseSerializer)
    def post(self, request: Request) -> Response:
        data = EditRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        config = data.validated_data["config"]
        if not isinstance(config, dict):
            raise ValidationError({"config": ["must be an object (the pipeline's top level)"]})
        if nests_deeper_than(config, MAX_DEPTH):  # the file could not be read back anyway
            raise ValidationError({"config": [f"nests deeper than {MAX_DEPTH} levels"]})
        try:
            text = apply_edit(data.validated_data["yaml"], config)
        except EditError as exc:  # the original text does not parse, or the data cannot be written
            raise ValidationError({"yaml": [str(exc)]}) from None
        _ok, problems = lint_text(text, ".devops.yml")
        return Response({"yaml": text, "problems": problems})
