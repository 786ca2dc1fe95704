"""`GET /p/<project>/pipelines/<pipeline>/badge.svg?branch=B&token=T`: a status badge.

Public but unguessable: `token` is an HMAC of the pipeline's id and name
keyed with the Django secret key (`badge_token`), so a README can embed it
without a login, nobody can list or guess other pipelines' badges, and a
wrong or missing token is a 404 like an unknown pipeline (nothing tells the
two apart). Rotating SLIPWAY_SECRET_KEY changes every badge URL.

The badge shows the state of the newest run on `branch` (every branch when
absent). Text is XML-escaped; `Cache-Control: no-cache` with an ETag, so a
proxy (GitHub's camo) revalidates every time and gets 304 while the state
is unchanged.
"""
from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode
from xml.sax.saxutils import escape

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.crypto import salted_hmac
from django.views.decorators.http import require_GET

from devops.models import ExecutionState as S
from devops.models import Pipeline, PipelineExecution

COLOURS = {
    S.SUCCESS: "#4c1", S.FAILED: "#e05d44", S.DENIED: "#e05d44", S.ABORTED: "#9f9f9f",
    S.BUILDING: "#dfb317", S.WAITING: "#dfb317", S.QUEUEING: "#dfb317",
}
STATE_TEXT = {S.SUCCESS: "passing", S.FAILED: "failing", S.DENIED: "denied", S.ABORTED: "aborted",
              S.BUILDING: "running", S.WAITING: "waiting", S.QUEUEING: "queued"}


def badge_token(pipeline: Pipeline) -> str:
    return salted_hmac("slipway.triggers.badge", f"{pipeline.pk}:{pipeline.name}").hexdigest()[:32]


def badge_url(pipeline: Pipeline, branch: str = "") -> str:
    """The badge's full URL (SLIPWAY_PUBLIC_URL), to copy into a README."""
    query = {"branch": branch, "token": badge_token(pipeline)} if branch else {"token": badge_token(pipeline)}
    return (f"{settings.PUBLIC_URL}/p/{pipeline.project_id}/pipelines/{pipeline.name}/badge.svg?"
            + urlencode(query))


def _width(text: str) -> int:
    return 10 + 7 * len(text)  # Verdana 11px averages ~7px a character: close enough for a badge


def render(label: str, message: str, colour: str) -> str:
    lw, mw = _width(label), _width(message)
    label_x, message_x = lw * 5, (lw + mw / 2) * 10
    l_text, m_text = escape(label), escape(message)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{lw + mw}" height="20" role="img" '
        f'aria-label="{escape(label + ": " + message, {chr(34): "&quot;"})}">'
        f"<title>{l_text}: {m_text}</title>"
        f'<rect width="{lw}" height="20" fill="#555"/>'
        f'<rect x="{lw}" width="{mw}" height="20" fill="{colour}"/>'
        f'<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" '
        f'font-size="110" transform="scale(.1)">'
        f'<text x="{label_x}" y="140">{l_text}</text>'
        f'<text x="{message_x:.0f}" y="140">{m_text}</text></g></svg>'
    )


@require_GET
def badge(request: HttpRequest, project: str, pipeline: str) -> HttpResponse:
    row = Pipeline.objects.filter(project_id=project, name=pipeline).only("id", "name", "project_id",
                                                                           "display_name", "last_run_state").first()
    token = request.GET.get("token", "")
    # Same 404 for an unknown pipeline and a wrong token; the comparison takes constant time.
    if row is None or not hmac.compare_digest(token.encode(), badge_token(row).encode()):
        raise Http404("no such badge")
    branch = request.GET.get("branch", "")
    if branch:
        state = (PipelineExecution.objects.filter(pipeline=row, branch=branch).order_by("-run")
                 .values_list("execution_state", flat=True).first())
    else:
        state = row.last_run_state or None
    label = row.display_name or row.name
    if branch:
        label = f"{label} {branch}"
    svg = render(label[:60], STATE_TEXT.get(state, "no runs" if state is None else str(state).lower()),
                 COLOURS.get(state, "#9f9f9f"))
    etag = '"' + hashlib.sha256(svg.encode()).hexdigest()[:20] + '"'
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        response = HttpResponseNotModified()
    else:
        response = HttpResponse(svg, content_type="image/svg+xml; charset=utf-8")
    response["ETag"] = etag
    response["Cache-Control"] = "no-cache"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response
