"""`python manage.py up`: the embedded default in one command.

Migrates, creates the first admin (printing its password once) and a first
project `default` owned by them with a sample pipeline `hello` (a small Git
repository in the data dir), so a newcomer's first click can be Run; then starts the web server (daphne, HTTP + WebSockets) and the
controller as child processes, prints the URL of the UI, and stops both on
Ctrl-C / SIGTERM.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from devops.env import envint

# The sample pipeline's file: a few coloured lines and a foldable group, in busybox
# (`_sample_image`: built here for the container runtime when it can be, else pulled;
# the sandbox and host runtimes ignore the image and use this machine's shell).
SAMPLE_PIPELINE = """\
# Made by `slipway up`: edit it, commit, and Run again (README "Pipeline files").
# {image_note}
stages:
- name: Hello
  steps:
  - runScriptConfig:
      image: {image}
      shellScript: |-
        printf '\\033[1;32mHello from your first Slipway pipeline\\033[0m\\n'
        echo "::group::Where this runs"
        uname -a
        pwd
        echo "::endgroup::"
        echo "Edit this repository's .devops.yml, commit, and Run again."
"""


class Command(BaseCommand):
    help = "Run Slipway on this machine: migrate, make a first admin, start web + controller."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("SLIPWAY_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=envint("SLIPWAY_PORT", 8000, minimum=1))
        parser.add_argument("--no-controller", action="store_true", help="web server only")

    def handle(self, *args, host: str, port: int, no_controller: bool, **options):
        call_command("migrate", interactive=False, verbosity=0)
        self._first_admin()
        first = self._first_project()
        procs: list[subprocess.Popen] = []
        env = dict(os.environ, DJANGO_SETTINGS_MODULE="devops.settings")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "daphne", "-b", host, "-p", str(port), "devops.asgi:application"],
                env=env,
            )
        )
        if not no_controller:
            procs.append(subprocess.Popen([sys.executable, "manage.py", "runcontroller"], env=env,
                                          cwd=settings.BASE_DIR))
        url = f"http://{host}:{port}/"
        if first is not None:
            self.stdout.write(f"Your first project {first.name!r} is ready: add a pipeline at "
                              f"{url}p/{first.id}/pipelines/new")
        self.stdout.write(self.style.SUCCESS(f"Slipway is running at {url}  (data: {settings.DATA_DIR})"))
        self.stdout.write(f"Open {url} in a browser and sign in.")
        self.stdout.write("Press Ctrl-C to stop.")

        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            while not stopping:
                for p in procs:
                    if p.poll() is not None:
                        self.stderr.write(f"{p.args[1:3]} exited with {p.returncode}; stopping")
                        stopping = True
                time.sleep(0.5)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()

    def _first_project(self):
        """A project `default` owned by the first admin, on a fresh install only (no project yet)."""
        from devops.controller.projects import do_create_project
        from devops.models import Project

        admin = get_user_model().objects.filter(is_superuser=True).order_by("pk").first()
        if admin is None or Project.objects.exists():
            return None
        project = do_create_project("default", owner=admin, description="Made by `slipway up`: your first project")
        self.stdout.write(f"Created the first project 'default' ({project.id}), owned by {admin.get_username()!r}.")
        self._sample_pipeline(project)
        return project

    def _sample_pipeline(self, project) -> None:
        """A pipeline `hello` in the first project, from a small Git repository made in the data
        dir, so a newcomer's first click can be Run (README "Two commands"). Best effort: without
        git the project simply starts empty."""
        from devops.models import Pipeline

        repo = settings.DATA_DIR / "sample" / "hello"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(repo),
               "GIT_AUTHOR_NAME": "Slipway", "GIT_AUTHOR_EMAIL": "slipway@localhost",
               "GIT_COMMITTER_NAME": "Slipway", "GIT_COMMITTER_EMAIL": "slipway@localhost"}
        try:
            repo.mkdir(parents=True, exist_ok=True)
            image, note = self._sample_image()
            (repo / ".devops.yml").write_text(SAMPLE_PIPELINE.format(image=image, image_note=note))
            for args in (["init", "-q", "-b", "main"], ["add", ".devops.yml"],
                         ["commit", "-q", "-m", "A first pipeline, made by slipway up"]):
                subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as exc:
            self.stderr.write(f"No sample pipeline (git: {exc}); add one from a Git URL.")
            return
        Pipeline.objects.create(project=project, name="hello", display_name="hello",
                                repository_url=repo.as_uri(), default_branch="main")
        self.stdout.write(f"Added the sample pipeline 'hello' (a Git repository in {repo}): open it and Run.")

    def _sample_image(self) -> tuple[str, str]:
        """The sample step's image and a line saying where it comes from. With the container
        runtime and Debian's busybox-static: `localhost/busybox:latest`, built here into the
        runtime's storage, so the first Run needs no network; else the public `busybox`."""
        from devops.engines.local.busybox import BUSYBOX, IMAGE, build_busybox
        from devops.engines.local.options import LocalOptions
        from devops.engines.local.runtimes import chosen_kind

        public = ("busybox", "busybox: pulled from Docker Hub by the container runtime.")
        opts = LocalOptions.from_settings()
        if chosen_kind(opts.step_runtime).name != "container" or not shutil.which("buildah"):
            return public
        if not os.path.exists(BUSYBOX):
            return public
        try:
            build_busybox(opts.containers_root)
        except (OSError, subprocess.SubprocessError) as exc:
            self.stderr.write(f"Could not build {IMAGE} ({exc}); the sample pulls busybox from Docker Hub.")
            return public
        self.stdout.write(f"Built {IMAGE} from {BUSYBOX} for the sample pipeline (no pull needed).")
        return IMAGE, f"{IMAGE}: built by `slipway up` from Debian's {BUSYBOX} (no pull needed)."

    def _first_admin(self) -> None:
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        username = os.environ.get("SLIPWAY_ADMIN_USER", "admin")
        given = os.environ.get("SLIPWAY_ADMIN_PASSWORD")
        password = given or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        if given:  # the operator knows it; never copy it into logs
            self.stdout.write(f"Created the first admin: user {username!r}, password from SLIPWAY_ADMIN_PASSWORD.")
            return
        self.stdout.write(self.style.WARNING(
            f"Created the first admin: user {username!r}, password {password!r} (shown once; change it)."
        ))
