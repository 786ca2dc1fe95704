"""`{% signup_open as open %}`: whether /accounts/signup/ accepts strangers (SLIPWAY_SIGNUP)."""
from __future__ import annotations

from django import template

from devops.accounts import signup_open as _signup_open

register = template.Library()


@register.simple_tag
def signup_open() -> bool:
    return _signup_open()
