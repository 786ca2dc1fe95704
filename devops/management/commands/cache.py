"""`python manage.py cache list PROJECT [PIPELINE]` / `cache clear PROJECT [PIPELINE] [--path P]`.

PROJECT is an id (p-xxxxx) or a name; PIPELINE a pipeline id. Operators run
this on the machine, so no membership check (the API checks it).
"""
from __future__ import annotations

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from devops.api import caches as index
from devops.cache.store import human_size, slug_for
from devops.controller.projects import get_project
from devops.models import Project


class Command(BaseCommand):
    help = "List or clear a project's caches (size, last use, hits/misses)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        for name in ("list", "clear"):
            p = sub.add_parser(name)
            p.add_argument("project")
            p.add_argument("pipeline", nargs="?")
        sub.choices["clear"].add_argument("--path", help="only the cache of this path")

    def handle(self, *args, action: str, project: str, pipeline: str | None = None, path: str | None = None,
               **opts):
        try:
            proj = get_project(project)
        except Project.DoesNotExist as e:
            raise CommandError(str(e)) from None
        if action == "clear":
            n = index.clear_caches(proj, pipeline, slug_for(path) if path else None)
            self.stdout.write(f"removed {n} cache{'s' if n != 1 else ''}")
            return
        infos = index.list_caches(proj, pipeline)
        if not infos:
            self.stdout.write("no caches")
            return
        rows = [("PIPELINE", "PATH", "SIZE", "LAST USED (UTC)", "HITS", "MISSES")]
        for i in infos:
            last = datetime.fromtimestamp(i.last_used, tz=UTC).strftime("%Y-%m-%d %H:%M:%S") \
                if i.last_used else "-"
            rows.append((i.pipeline, i.path, human_size(i.size), last, str(i.hits), str(i.misses)))
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        for r in rows:
            self.stdout.write("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=False)).rstrip())
        self.stdout.write(f"total {human_size(sum(i.size for i in infos))}")
