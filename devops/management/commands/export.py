"""`python manage.py export KIND [--project P] [--stream]` — objects as CRD-shaped YAML.

Output: one `kind: List` document (as `kubectl get -o yaml` writes), its
`items` the objects in CRD shape (devops/api/crd.py, the same rendering as
the API). `--stream` writes one `---`-separated document per object instead.
Tokens and secret values are never printed: the renderer never reads them.
"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from devops.api import crd
from devops.controller.projects import get_project
from devops.models import Project


def resolve_kind(name: str) -> str:
    """The plural kind for `pipelines`, `pipeline` or `Pipeline`; CommandError listing the valid ones."""
    wanted = name.lower()
    for plural, kind in crd.KINDS.items():
        if wanted in (plural, kind.kind.lower()):
            return plural
    raise CommandError(f"unknown kind {name!r}; one of: {', '.join(crd.KINDS)}")


class Command(BaseCommand):
    help = "Export objects as CRD-shaped YAML (apiVersion project.slipway.io/v3)."

    def add_arguments(self, parser):
        parser.add_argument("kind", help=f"one of: {', '.join(crd.KINDS)}")
        parser.add_argument("--project", "-p", help="only this project (id or name)")
        parser.add_argument(
            "--stream", action="store_true", help="one `---`-separated document per object instead of a List"
        )

    def handle(self, *args, kind: str, project: str | None, stream: bool, **options):
        plural = resolve_kind(kind)
        project_id = None
        if project:
            try:
                project_id = get_project(project).id
            except Project.DoesNotExist as exc:
                raise CommandError(str(exc)) from None
        # Written object by object, so a large history never sits in memory whole.
        items = crd.iter_objects(plural, project_id)
        if stream:
            for item in items:
                self.stdout.write("---\n" + crd.to_yaml(item), ending="")
            return
        self.stdout.write("apiVersion: v1\nkind: List\nmetadata: {}\n", ending="")
        first = next(items, None)
        if first is None:
            self.stdout.write("items: []")
            return
        self.stdout.write("items:\n" + crd.to_yaml([first]), ending="")
        for item in items:
            self.stdout.write(crd.to_yaml([item]), ending="")  # a one-item block list is `- ...`
