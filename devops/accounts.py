"""Who may create an account: the allauth adapter behind `SLIPWAY_SIGNUP`.

Sign-up is closed by default: a CI host runs the code of whoever can log in,
so accounts are made by an admin (`manage.py user add`, or `/admin/`) and a
project owner adds them to the project. With `SLIPWAY_SIGNUP=open` anyone may
sign up, and a new account still sees no project until an owner adds it.
Social logins follow the same rule (allauth's social adapter asks this one).
"""
from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings


def signup_open() -> bool:
    return settings.SLIPWAY_SIGNUP == "open"


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        return signup_open()
