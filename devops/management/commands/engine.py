"""`python manage.py engine jenkins render FILE [--nodes NODE,NODE,...] [--branch B] [--event E]`.

Prints the Jenkinsfile the Jenkins engine would run for pipeline file FILE:
`--nodes` are the recorded nodes, newest first, as the pipeline's
`executionScheduledInfo` holds them (preferred node affinity, weight 100-10i);
`--branch`/`--event` decide `when` as for a real run. Values of a real run
(commit, CICD_*) are build parameters, so they never change the output.
"""
from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Engine tools: `engine jenkins render FILE` prints the Jenkinsfile of a pipeline file."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="engine", required=True)
        jenkins = sub.add_parser("jenkins")
        jsub = jenkins.add_subparsers(dest="action", required=True)
        render = jsub.add_parser("render")
        render.add_argument("file")
        render.add_argument("--nodes", default="", help="recorded nodes, newest first, comma-separated")
        render.add_argument("--branch", default="master")
        render.add_argument("--event", default="push", choices=("push", "pull_request", "tag", ""))
        render.add_argument("--execution", default="p-render-1", help="execution name (the job's name)")

    def handle(self, *args, engine: str, action: str, file: str, nodes: str = "", branch: str = "master",
               event: str = "push", execution: str = "p-render-1", **opts):
        from devops.engines.base import RunSpec
        from devops.engines.jenkins.errors import JenkinsfileError
        from devops.engines.jenkins.jenkinsfile import render as render_jenkinsfile
        from devops.engines.jenkins.options import JenkinsOptions
        from devops.pipeline import load

        path = Path(file)
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"{file}: {exc.strerror}") from None
        result = load(text, filename=file)
        if result.config is None:
            raise CommandError("\n".join(p.format(file) for p in result.problems))
        spec = RunSpec(execution=execution, project_id="p-render", pipeline_id=path.stem, run=1,
                       repository_url="", commit="", branch=branch, ref=f"refs/heads/{branch}", event=event,
                       trigger_type="manual", config=result.config)
        node_list = [n.strip() for n in nodes.split(",") if n.strip()]
        try:
            self.stdout.write(render_jenkinsfile(spec, JenkinsOptions(), node_list), ending="")
        except JenkinsfileError as exc:
            raise CommandError(str(exc)) from None
