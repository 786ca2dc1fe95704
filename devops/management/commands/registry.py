"""`python manage.py registry ls [REPOSITORY]`: what the built-in registry itself reports.

Also `registry start` / `registry stop` / `registry info` / `registry rotate` for operators.
"""
from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from devops.registry import server as reg


class Command(BaseCommand):
    help = "The built-in registry: ls [REPOSITORY] | start | stop | info | rotate"

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        ls = sub.add_parser("ls", help="repositories and tags (HTTP API v2 _catalog / tags/list)")
        ls.add_argument("repository", nargs="?")
        ls.add_argument("--digests", action="store_true", help="also show each tag's manifest digest")
        sub.add_parser("start", help="start it now, detached, until `registry stop` (the controller "
                                     "starts one that ends with it)")
        sub.add_parser("stop")
        sub.add_parser("info", help="address, token endpoint and the internal user (never a password)")
        sub.add_parser("rotate", help="new registry passwords for every project (new runs get them)")

    def handle(self, *args, action: str, repository: str | None = None, digests: bool = False, **opts):
        data_dir = settings.DATA_DIR
        if action == "start":
            try:
                info = reg.ensure_registry(data_dir, die_with_parent=False)  # outlives this command
            except reg.RegistryError as e:
                raise CommandError(str(e)) from None
            self.stdout.write(f"built-in registry at {info.address}")
            return
        if action == "stop":
            self.stdout.write("stopped" if reg.stop_registry(data_dir) else "not running")
            return
        if action == "rotate":
            try:
                reg.rotate_project_passwords(data_dir)
            except reg.RegistryError as e:
                raise CommandError(str(e)) from None
            self.stdout.write("every project's registry password changed; runs started from now get the new one")
            return
        info = reg.registry_info(data_dir)
        if info is None:
            raise CommandError("the built-in registry was never started here "
                               "(it starts with the controller; `registry start` starts it now)")
        if action == "info":
            self.stdout.write(f"address {info.address}\nusername {info.username}\n"
                              f"token endpoint {reg.token_realm(data_dir)}\n"
                              f"running {'yes' if reg.answers(info.address) else 'no'}")
            return
        try:
            repos = [repository] if repository else reg.catalog(info)
            for repo in repos:
                tag_list = reg.tags(info, repo)
                if repository or digests:
                    for tag in tag_list:
                        digest = reg.manifest_digest(info, repo, tag)
                        self.stdout.write(f"{info.address}/{repo}:{tag}  {digest}")
                else:
                    self.stdout.write(f"{info.address}/{repo}  {', '.join(tag_list) or '(no tags)'}")
        except reg.RegistryError as e:
            raise CommandError(str(e)) from None
