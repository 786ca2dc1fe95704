"""`python manage.py project create|list|setting|secret|member ...` — projects from the shell.

    project create NAME [--owner USER] [--description TEXT]   prints the new project id
    project list                                              id, name, members
    project setting PROJECT NAME [VALUE]                      show (effective value) or set ("" = default)
    project secret PROJECT NAME KEY=-|KEY=@FILE... [--from-stdin] [--replace]
                                                              create or update; values never on argv, never echoed
    project member PROJECT USER ROLE                          owner | member | read-only | none (remove)

Secret values never come from the command line (every user of the machine
sees it in `ps`, and it lands in shell history): `KEY=-` reads the value from
stdin (one trailing newline dropped), `KEY=@FILE` reads the file as it is,
`--from-stdin` reads `KEY=VALUE` lines from stdin. A plain `KEY=VALUE` is refused.

PROJECT is a project id (`p-xxxxx`) or name. Values are checked by the same
rules as the API (devops/api/validation.py); errors exit 1.
"""
from __future__ import annotations

import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from devops.api import validation
from devops.controller.projects import do_create_project, get_project
from devops.models import DEFAULT_SETTINGS, Project, ProjectMember, Role, Secret


def _project(ref: str) -> Project:
    try:
        return get_project(ref)
    except Project.DoesNotExist as exc:
        raise CommandError(str(exc)) from None


def _user(name: str):
    user = get_user_model().objects.filter(username=name).first()
    if user is None:
        raise CommandError(f"no user named {name!r}")
    return user


SECRET_HOW = ("use KEY=- (the value from stdin), KEY=@FILE (from a file) or --from-stdin "
              "(KEY=VALUE lines on stdin)")


def _secret_values(pairs: list[str], from_stdin: bool, stdin) -> dict[str, str]:
    """KEY=- / KEY=@FILE arguments and --from-stdin lines -> {key: value}; never a value from argv."""
    if not pairs and not from_stdin:
        raise CommandError(f"no values given: {SECRET_HOW}")
    wants_stdin = [p for p in pairs if p.partition("=")[2] == "-"]
    if len(wants_stdin) + bool(from_stdin) > 1:
        raise CommandError("stdin can be read once: give one KEY=- or --from-stdin, not both")
    data: dict[str, str] = {}
    if from_stdin:
        for number, line in enumerate(stdin.read().splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if not sep:  # not echoed: the line may be a value typed without its key
                raise CommandError(f"stdin line {number} is not KEY=VALUE")
            data[key.strip()] = value
    for number, pair in enumerate(pairs, start=1):
        key, sep, value = pair.partition("=")
        if not sep:  # not echoed: the word may be a value typed without its key
            raise CommandError(f"argument {number} after the secret name is not KEY=- or KEY=@FILE")
        if value == "-":
            text = stdin.read()
            data[key] = text[:-1] if text.endswith("\n") else text
        elif value.startswith("@") and len(value) > 1:
            try:
                with open(value[1:], encoding="utf-8") as f:
                    data[key] = f.read()
            except OSError as exc:
                raise CommandError(f"{key}: cannot read {value[1:]!r} ({exc.strerror})") from None
            except UnicodeDecodeError:
                raise CommandError(f"{key}: {value[1:]!r} is not UTF-8 text") from None
        else:
            # The value is already in this process's argv and the shell history;
            # refusing it teaches the safe form before a real secret goes that way.
            raise CommandError(f"{key}: a secret value on the command line is visible to every user "
                               f"of this machine (ps, shell history); {SECRET_HOW}")
    return data


class Command(BaseCommand):
    help = "Create and list projects; show or set settings; write secrets; manage members."
    # Tests pass a file object as stdin (call_command(..., stdin=io.StringIO(...))).
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="subcommand", required=True)
        p = sub.add_parser("create", help="create a project and print its id")
        p.add_argument("name")
        p.add_argument("--owner", help="user name of the first owner")
        p.add_argument("--description", default="")
        sub.add_parser("list", help="list projects")
        p = sub.add_parser("setting", help="show or set a PipelineSetting")
        p.add_argument("project")
        p.add_argument("name")
        p.add_argument("value", nargs="?")
        p = sub.add_parser("secret", help="create or update a project secret")
        p.add_argument("project")
        p.add_argument("name")
        p.add_argument("pairs", nargs="*", metavar="KEY=-|KEY=@FILE",
                       help="KEY=- reads the value from stdin; KEY=@FILE from a file")
        p.add_argument("--from-stdin", action="store_true", help="read KEY=VALUE lines from stdin")
        p.add_argument("--replace", action="store_true", help="drop keys not given (default: keep them)")
        p = sub.add_parser("member", help="add a member, change a role, or remove (ROLE none)")
        p.add_argument("project")
        p.add_argument("user")
        p.add_argument("role", choices=[*Role.values, "none"])

    def handle(self, *args, subcommand: str, **options):
        getattr(self, "cmd_" + subcommand)(**options)

    def cmd_create(self, *, name: str, owner: str | None, description: str, **_):
        name = name.strip()
        # as the API: 1-100 characters; no control characters (they would break `project list`)
        if not name or len(name) > 100 or any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise CommandError(f"{name!r} is not a valid project name: 1 to 100 printable characters")
        if Project.objects.filter(name=name).exists():
            raise CommandError(f"a project named {name!r} exists")
        project = do_create_project(name, owner=_user(owner) if owner else None, description=description)
        self.stdout.write(project.id)

    def cmd_list(self, **_):
        rows = Project.objects.prefetch_related("members__user").order_by("name")
        for project in rows:
            members = ", ".join(f"{m.user.get_username()}({m.role})" for m in project.members.all())
            self.stdout.write(f"{project.id}\t{project.name}\t{members}")

    def cmd_setting(self, *, project: str, name: str, value: str | None, **_):
        obj = _project(project)
        if name not in DEFAULT_SETTINGS:
            raise CommandError(f"unknown setting {name!r}; valid settings: {', '.join(DEFAULT_SETTINGS)}")
        setting = obj.settings.filter(name=name).first()
        if setting is None:  # a project created before this setting existed
            setting = obj.settings.create(name=name, default=DEFAULT_SETTINGS[name][0])
        if value is None:
            self.stdout.write(setting.effective)
            return
        try:
            # The operator at the shell counts as a superuser (host paths allowed).
            setting.value = validation.check_setting(name, value, superuser=True)
        except ValueError as exc:
            raise CommandError(f"{name}: {exc}") from None
        setting.save(update_fields=["value"])
        shown = setting.effective + (" (default)" if setting.value == "" else "")
        self.stdout.write(f"{obj.id} {name} = {shown}")

    def cmd_secret(self, *, project: str, name: str, pairs: list[str], replace: bool, from_stdin: bool = False,
                   stdin=None, **_):
        obj = _project(project)
        data = _secret_values(pairs, from_stdin, stdin or sys.stdin)
        try:
            validation.check_secret_name(name)
            validation.check_secret_data(data)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        with transaction.atomic():
            secret, created = Secret.objects.select_for_update().get_or_create(project=obj, name=name)
            secret.data = data if (replace or created) else {**secret.data, **data}
            secret.save()
        verb = "created" if created else "updated"
        self.stdout.write(f"secret {name} {verb} in {obj.id}: keys {', '.join(sorted(secret.data))}")

    def cmd_member(self, *, project: str, user: str, role: str, **_):
        obj = _project(project)
        account = _user(user)
        with transaction.atomic():
            member = ProjectMember.objects.select_for_update().filter(project=obj, user=account).first()
            last_owner = (
                member is not None
                and member.role == Role.OWNER
                and not obj.members.filter(role=Role.OWNER).exclude(pk=member.pk).exists()
            )
            if last_owner and role != Role.OWNER:
                raise CommandError(f"{user} is the last owner of {obj.id}; add another owner first")
            if role == "none":
                if member:
                    member.delete()
                self.stdout.write(f"{user} removed from {obj.id}")
                return
            ProjectMember.objects.update_or_create(project=obj, user=account, defaults={"role": role})
        self.stdout.write(f"{user} is {role} in {obj.id}")
