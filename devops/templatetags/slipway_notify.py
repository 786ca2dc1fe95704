"""`{% run_notifications execution as notes %}`: a run's notifications, for the run page's section."""
from __future__ import annotations

from django import template

from devops.models import NotificationDelivery

register = template.Library()


@register.simple_tag
def run_notifications(execution) -> list[NotificationDelivery]:
    """One query; the page already checked membership (its view's `project_for`)."""
    return list(NotificationDelivery.objects.filter(execution=execution).order_by("index"))
