"""`python manage.py user add NAME [--email E] [--superuser] [--password-stdin]` — accounts from the shell.

Sign-up is closed by default (SLIPWAY_SIGNUP), so this and the admin
(`/admin/`) are how people get an account; a project owner then adds them to
the project (`project member`, or the members API).

The password is read from stdin (`--password-stdin`, first line), or else a
random one is generated and printed once. It never comes from argv, where
every user of the machine could read it in `ps`.
"""
from __future__ import annotations

import secrets
import sys

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction


class Command(BaseCommand):
    help = "Add a user account (sign-up is closed by default)."
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="subcommand", required=True)
        p = sub.add_parser("add", help="create an account; prints a generated password unless --password-stdin")
        p.add_argument("name")
        p.add_argument("--email", default="")
        p.add_argument("--superuser", action="store_true", help="a Slipway administrator")
        p.add_argument("--password-stdin", action="store_true", help="read the password from stdin (first line)")

    def handle(self, *args, subcommand: str, **options):
        getattr(self, "cmd_" + subcommand)(**options)

    def cmd_add(self, *, name: str, email: str, superuser: bool, password_stdin: bool, stdin=None, **_):
        User = get_user_model()
        name = name.strip()
        if not name:
            raise CommandError("the user name is empty")
        generated = not password_stdin
        if password_stdin:
            password = (stdin or sys.stdin).readline().rstrip("\r\n")
            if not password:
                raise CommandError("no password on stdin")
        else:
            password = secrets.token_urlsafe(18)
        user = User(username=name, email=email.strip())
        try:
            user.full_clean(exclude=["password"])
            validate_password(password, user)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        user.set_password(password)
        user.is_staff = user.is_superuser = superuser
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:
            raise CommandError(f"a user named {name!r} exists") from None
        self.stdout.write(f"user {name} created" + (" (superuser)" if superuser else ""))
        if generated:
            self.stdout.write(f"password: {password}")
