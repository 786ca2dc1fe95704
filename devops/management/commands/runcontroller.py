"""`python manage.py runcontroller [--once | --until-idle]`: the reconcile loop (devops/controller/loop.py)."""
from __future__ import annotations

import logging

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the controller: admit, start, sync, stop and finish pipeline executions."

    def add_arguments(self, parser):
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--once", action="store_true", help="one pass, then exit")
        mode.add_argument("--until-idle", action="store_true",
                          help="exit once nothing is Waiting, Queueing or Building")

    def handle(self, *args, once: bool, until_idle: bool, **options):
        from devops.controller.loop import Controller

        if logging.getLogger().getEffectiveLevel() > logging.INFO:
            # Admissions, starts and finishes are the operator's view of the loop.
            logging.getLogger("devops.controller").setLevel(logging.INFO)
        from devops.registry.server import start_with_controller, stop_with_controller

        start_with_controller()  # the built-in registry (DESIGN §9); logs and goes on when not installed
        try:
            controller = Controller()
            previous = controller.install_signal_handlers()
            try:
                controller.run_forever(once=once, until_idle=until_idle)
            finally:
                controller.restore_signal_handlers(previous)
        finally:
            stop_with_controller()
