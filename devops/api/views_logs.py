"""HTTP access to step logs (under /api/v1/, see urls.py).

Every view checks project membership (read level: read-only members may
read logs) through devops.api.permissions.project_for: anonymous -> 401/403,
not a member or no such project -> 404, as elsewhere in the API.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from devops.api.permissions import project_for
from devops.logs import get_log_store
from devops.logs.base import LogKey
from devops.logs.lines import UNSATISFIABLE, parse_range, read_lines
from devops.logs.search import MAX_QUERY, search_log

STREAM_PIECE = 256 << 10
MAX_LIMIT = 1000


class PlainTextRenderer(BaseRenderer):
    """Lets `Accept: text/plain` clients in (and renders errors for them as text)."""

    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, dict) and "detail" in data:
            return str(data["detail"]).encode()
        return str(data).encode() if not isinstance(data, bytes) else data


class LogStoreUnavailable(APIException):
    status_code = 503
    default_detail = "The log store is unreachable (S3 down?) and this log is not spooled here; try again later."
    default_code = "log_store_unavailable"


class _StoreErrorsAre503:
    """A log store that cannot be reached is a 503 with a reason, not a 500."""

    def handle_exception(self, exc):
        from minio.error import MinioException
        from urllib3.exceptions import HTTPError

        if isinstance(exc, (MinioException, HTTPError)):
            exc = LogStoreUnavailable()
        return super().handle_exception(exc)


def _execution_key(request: Request, project: str, name: str, stage: int, step: int) -> LogKey:
    from devops.models import PipelineExecution

    p = project_for(request, project, "read")
    if not PipelineExecution.objects.filter(project=p, name=name).exists():
        raise NotFound("No such execution.")
    return LogKey(name, stage, step)


class StepLogView(_StoreErrorsAre503, APIView):
    """GET the raw log of one step: `text/plain; charset=utf-8`, byte-exact.

    Supports a single `Range: bytes=...` (206 + Content-Range; 416 when it
    starts past the end). A log still being written is served up to its size
    at the time of the request. 404 when the step has no log (yet).
    """

    renderer_classes = (JSONRenderer, PlainTextRenderer)

    @extend_schema(
        operation_id="step_log_raw",
        parameters=[OpenApiParameter("Range", OpenApiTypes.STR, OpenApiParameter.HEADER,
                                     description="bytes=FIRST-LAST (one range)")],
        responses={(200, "text/plain"): OpenApiTypes.BINARY, (206, "text/plain"): OpenApiTypes.BINARY,
                   416: None, 404: None},
    )
    def get(self, request, project: str, name: str, stage: int, step: int):
        key = _execution_key(request, project, name, stage, step)
        store = get_log_store()
        complete = store.is_complete(key)
        size = store.size(key)
        if size == 0 and not complete:
            raise NotFound("This step has no log (yet).")
        rng = parse_range(request.headers.get("Range", ""), size)
        if rng == UNSATISFIABLE:
            resp = HttpResponse(status=416, content_type="text/plain; charset=utf-8")
            resp["Content-Range"] = f"bytes */{size}"
        else:
            # Streamed in STREAM_PIECE pieces, whole or ranged: the web process
            # holds one piece, whatever the log's size.
            first, last = rng or (0, size - 1)
            resp = StreamingHttpResponse(_streamed(request, store.iter_bytes(key, first, last + 1, STREAM_PIECE)),
                                         status=200 if rng is None else 206,
                                         content_type="text/plain; charset=utf-8")
            resp["Content-Length"] = str(last + 1 - first)
            if rng is not None:
                resp["Content-Range"] = f"bytes {first}-{last}/{size}"
        resp["Accept-Ranges"] = "bytes"
        resp["X-Log-Complete"] = "true" if complete else "false"
        resp["Content-Disposition"] = f'inline; filename="{name}-{stage}-{step}.log"'
        resp["Cache-Control"] = "no-store"
        return resp


def _streamed(request: Request, pieces: Iterator[bytes]) -> Iterator[bytes] | AsyncIterator[bytes]:
    """`pieces` as the server can stream them.

    Under ASGI (daphne) Django turns a sync iterator into a list before it
    sends a byte (StreamingHttpResponse.__aiter__), i.e. the whole log in the
    web process; there each piece is pulled in a worker thread instead, one
    at a time. Under WSGI (and the test client) the iterator stays as it is.
    """
    if not isinstance(getattr(request, "_request", request), ASGIRequest):
        return pieces
    done = object()

    async def pull() -> AsyncIterator[bytes]:
        try:
            while (piece := await sync_to_async(next, thread_sensitive=False)(pieces, done)) is not done:
                yield piece  # type: ignore[misc]
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                await sync_to_async(close, thread_sensitive=False)()

    return pull()


class StepLogLinesView(_StoreErrorsAre503, APIView):
    """GET `?from=LINE&limit=N`: a page of lines (1-based numbers, byte offsets,
    ISO-8601 UTC timestamps) for the UI. `limit` defaults to 100, at most 1000."""

    @extend_schema(
        operation_id="step_log_lines",
        parameters=[OpenApiParameter("from", int, description="first line, 1-based"),
                    OpenApiParameter("limit", int, description="lines, 1..1000 (default 100)")],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request, project: str, name: str, stage: int, step: int):
        key = _execution_key(request, project, name, stage, step)
        try:
            start = int(request.query_params.get("from", 1))
            limit = int(request.query_params.get("limit", 100))
        except ValueError:
            raise ValidationError({"from": "from and limit must be integers"}) from None
        if start < 1 or not 1 <= limit <= MAX_LIMIT:
            raise ValidationError({"limit": f"from >= 1 and 1 <= limit <= {MAX_LIMIT}"})
        page = read_lines(get_log_store(), key, start, limit)
        return Response({"execution": name, "stage": stage, "step": step, **page})


class StepLogSearchView(_StoreErrorsAre503, APIView):
    """GET `?q=TEXT&from=LINE&direction=next|prev&case=1`: search the whole stored log.

    One streaming scan of the raw bytes on the server (devops.logs.search:
    memory stays one piece, whatever the log's size), so it finds lines the
    browser has not rendered. Answers how many lines match and the line of the
    next match after `from` (or the previous one before it), wrapping at the
    ends, with its ordinal among the matches; `line` is null when none match.
    """

    @extend_schema(
        operation_id="step_log_search",
        parameters=[
            OpenApiParameter("q", str, required=True, description=f"text to find, 1..{MAX_QUERY} bytes"),
            OpenApiParameter("from", int, description="search after (next) or before (prev) this line; default 0"),
            OpenApiParameter("direction", str, enum=["next", "prev"], description="default next"),
            OpenApiParameter("case", bool, description="case-sensitive (default: ASCII case-insensitive)"),
        ],
        responses=inline_serializer("StepLogSearch", {
            "query": serializers.CharField(),
            "count": serializers.IntegerField(help_text="lines that match"),
            "line": serializers.IntegerField(allow_null=True, help_text="the match asked for"),
            "ordinal": serializers.IntegerField(allow_null=True, help_text="its 1-based position among the matches"),
            "lines": serializers.IntegerField(help_text="lines in the log"),
            "size": serializers.IntegerField(help_text="bytes searched"),
            "complete": serializers.BooleanField(),
        }),
    )
    def get(self, request, project: str, name: str, stage: int, step: int):
        key = _execution_key(request, project, name, stage, step)
        query = request.query_params.get("q", "")
        direction = request.query_params.get("direction", "next")
        try:
            around = int(request.query_params.get("from", 0))
        except ValueError:
            raise ValidationError({"from": "must be an integer"}) from None
        if not 1 <= len(query.encode()) <= MAX_QUERY:
            raise ValidationError({"q": f"1..{MAX_QUERY} bytes"})
        if direction not in ("next", "prev"):
            raise ValidationError({"direction": "next or prev"})
        store = get_log_store()
        complete = store.is_complete(key)
        found = search_log(store, key, query, max(around, 0), direction,
                           case_sensitive=request.query_params.get("case") in ("1", "true"))
        return Response({"query": query, "count": found.count, "line": found.line, "ordinal": found.ordinal,
                         "lines": found.lines, "size": found.size, "complete": complete})


class ExecutionLogsView(_StoreErrorsAre503, APIView):
    """GET the step logs an execution has: [{stage, step, size, complete}]."""

    @extend_schema(
        operation_id="execution_logs",
        responses=inline_serializer("ExecutionLogs", {
            "execution": serializers.CharField(),
            "logs": serializers.ListField(child=inline_serializer("StepLogInfo", {
                "stage": serializers.IntegerField(), "step": serializers.IntegerField(),
                "size": serializers.IntegerField(), "complete": serializers.BooleanField(),
            })),
        }),
    )
    def get(self, request, project: str, name: str):
        key = _execution_key(request, project, name, 0, 0)
        store = get_log_store()
        out = []
        for k in store.keys(key.execution):
            complete = store.is_complete(k)
            out.append({"stage": k.stage, "step": k.step, "size": store.size(k), "complete": complete})
        return Response({"execution": name, "logs": out})
