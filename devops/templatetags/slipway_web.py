"""Template helpers of the browser UI: `{% load slipway_web %}`.

    {% state value %}                 <span class="state state-success">Success</span> (colour AND text)
    {% duration started ended %}      "1m 02s"; a run still going counts up to now
    {% run_url project pipeline n %}  the execution page (`web:run`)
"""
from __future__ import annotations

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html

register = template.Library()


@register.simple_tag
def state(value: str | None) -> str:
    """A state badge: the state's name as text, its colour from `.state-<name>` (never colour alone)."""
    if not value:
        return format_html('<span class="state state-none">{}</span>', "No runs")
    return format_html('<span class="state state-{}">{}</span>', value.lower(), value)


@register.simple_tag
def duration(started, ended=None) -> str:
    if started is None:
        return "—"
    seconds = int(((ended or timezone.now()) - started).total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


@register.simple_tag
def run_url(project_id: str, pipeline: str, n: int) -> str:
    """`web:run`; its literal path while the execution page is not wired in (the URL is stable)."""
    try:
        return reverse("web:run", kwargs={"project": project_id, "pipeline": pipeline, "n": n})
    except NoReverseMatch:
        return f"/p/{project_id}/pipelines/{pipeline}/runs/{n}/"


@register.filter
def get_item(mapping, key):
    """`{{ errors|get_item:name }}`: a dict lookup by a variable key."""
    return (mapping or {}).get(key)


@register.filter
def epoch_ago(ts: float) -> str:
    """A Unix time (cache metadata) as "3 hours ago"; "never" for 0."""
    from datetime import UTC, datetime

    from django.utils.timesince import timesince

    if not ts:
        return "never"
    return f"{timesince(datetime.fromtimestamp(ts, tz=UTC))} ago"


@register.filter
def first_line(text: str) -> str:
    """A commit message's subject: its first line."""
    return (text or "").strip().split("\n", 1)[0]
