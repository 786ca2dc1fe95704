"""`python manage.py pipeline lint|show|run|logs ...`

Each sub-command's behaviour lives beside the code it drives (devops/pipeline/cli.py
for lint/show, devops/controller/cli.py for run/logs); this file only routes.
"""
from __future__ import annotations

from importlib import import_module

from django.core.management.base import BaseCommand, CommandError

SUBCOMMANDS = {
    "lint": "devops.pipeline.cli",
    "show": "devops.pipeline.cli",
    "run": "devops.controller.cli",
    "logs": "devops.controller.cli",
}


class Command(BaseCommand):
    help = "Pipeline files and runs: lint, show, run, logs."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="subcommand", required=True)
        for name, module in SUBCOMMANDS.items():
            p = sub.add_parser(name, help=f"pipeline {name}")
            try:
                import_module(module).add_arguments(name, p)
            except ImportError:
                pass

    def handle(self, *args, subcommand: str, **options):
        try:
            module = import_module(SUBCOMMANDS[subcommand])
        except ImportError as exc:
            raise CommandError(f"pipeline {subcommand} is not available: {exc}") from exc
        code = module.handle(subcommand, options, stdout=self.stdout, stderr=self.stderr)
        if code:
            raise SystemExit(code)
