"""The one status WebSocket of a page: pushed re-rendered partials, no polling.

Routes (devops/routing.py), one per kind of page:
    ws/v1/status/                                  the project list: every project of the user
    ws/v1/status/<project>/                        a project's pipeline list
    ws/v1/status/<project>/executions/<name>       one execution (the run page)

Frames (server -> client, text): HTML for the htmx ws extension — one or
more elements, each with an `id` and `hx-swap-oob="true"`, that replace the
element with that id. The same `{% partialdef %}` fragments the pages render:
    run page        web/run.html#run-live              (id "run-live")
    pipeline list   web/project.html#pipeline-row   (id "pipeline-<pipeline name>")
    project list    web/projects.html#project-row   (id "project-<project id>")
The first frame after every (re)connect is the whole current state, so a
client that lost its socket catches up without a reload. After it, the run
page gets only the elements that changed (`views_run.run_frame`: the
header, a stage, or one step, each its own out-of-band element).

Refusals close the handshake (HTTP 403 in daphne) with a code for test
clients: 4401 not signed in, 4403 not a member (or no such project), 4404
no such execution. Membership is checked on connect.

Where changes come from: `status.changed` messages on the project's group
(devops/web/live.py, from `execution_changed` in whichever process made the
change). Changes are coalesced: one task per socket is the only sender; it
renders once for every burst, from the database, so a frame always shows
committed state and frames never interleave.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from devops.web import live

log = logging.getLogger(__name__)

EVERYTHING = "*"  # a pending key: render the whole state (on connect)


@dataclass
class Watch:
    """What one socket shows, decided once on connect."""

    kind: str                      # "run" | "pipelines" | "projects"
    user: object
    projects: dict[str, bool] = field(default_factory=dict)   # project id -> can write
    execution: str = ""            # kind "run": the execution's name
    shown: dict = field(default_factory=dict)  # kind "run": what the page has (views_run.run_frame)


@database_sync_to_async
def _watch(user, project_id: str | None, name: str | None) -> tuple[Watch | None, int]:
    from devops.api.permissions import LEVEL_ROLES, projects_of, role_in
    from devops.models import PipelineExecution, ProjectMember, Role

    if project_id is None:
        if user.is_superuser:
            rows = {p: Role.OWNER for p in projects_of(user).values_list("pk", flat=True)}
        else:
            rows = dict(ProjectMember.objects.filter(user=user).values_list("project_id", "role"))
        return Watch("projects", user, {p: r in LEVEL_ROLES["write"] for p, r in rows.items()}), 0
    project, role = role_in(project_id, user)
    if project is None:
        return None, 4403
    can_write = role in LEVEL_ROLES["write"]
    if name is None:
        return Watch("pipelines", user, {project.pk: can_write}), 0
    if not PipelineExecution.objects.filter(project=project, name=name).exists():
        return None, 4404
    return Watch("run", user, {project.pk: can_write}, name), 0


@database_sync_to_async
def render(watch: Watch, changed: set[str]) -> str:
    """The frame for these changes: pending execution names, or EVERYTHING."""
    from django.template.loader import render_to_string

    from devops.models import PipelineExecution, Project
    from devops.web import status
    from devops.web.views import pipeline_rows, project_rows
    from devops.web.views_run import run_context, run_frame

    if watch.kind == "run":
        execution = (PipelineExecution.objects.select_related("pipeline", "project", "trigger_user")
                     .defer("config", "config_text", "engine_handle", "conditions")  # unused, and large
                     .filter(name=watch.execution).first())
        if execution is None:
            return ""
        can_write = watch.projects[execution.project_id]
        if EVERYTHING in changed:
            watch.shown.clear()   # a (re)connect: the whole run
        return run_frame(run_context(execution, can_write, oob=True), watch.shown)
    if watch.kind == "pipelines":
        (project_id, can_write), = watch.projects.items()
        project = Project.objects.get(pk=project_id)
        project.can_write = can_write  # as web.access.project_for sets it for the page
        names = None if EVERYTHING in changed else [p.name for p in status.changed_pipelines(project_id, changed)]
        if names == []:
            return ""
        return "".join(render_to_string("web/project.html#pipeline-row", {"project": project, "p": p, "oob": True})
                       for p in pipeline_rows(project, names))
    ids = list(watch.projects) if EVERYTHING in changed else sorted(
        set(PipelineExecution.objects.filter(name__in=changed).values_list("project_id", flat=True))
        & set(watch.projects))
    if not ids:
        return ""
    return "".join(render_to_string("web/projects.html#project-row", {"p": p, "oob": True})
                   for p in project_rows(watch.user).filter(pk__in=ids))


class StatusConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.task: asyncio.Task | None = None
        self.groups_joined: list[str] = []
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        kwargs = self.scope["url_route"]["kwargs"]
        self.watch, refusal = await _watch(user, kwargs.get("project"), kwargs.get("name"))
        if refusal:
            await self.close(code=refusal)
            return
        await self.accept()
        # Join before the first render, so no change falls between what the
        # first frame shows and the messages that follow it.
        if not live.uses_redis():
            live.ensure_listener(self.channel_layer)
        for project_id in self.watch.projects:
            group = live.status_group(project_id)
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.append(group)
        self.pending: set[str] = {EVERYTHING}
        self.wake = asyncio.Event()
        self.wake.set()
        self.task = asyncio.create_task(self._pump())

    async def disconnect(self, code) -> None:
        if self.task is not None:
            self.task.cancel()
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def status_changed(self, event) -> None:
        if self.watch.kind == "run" and event.get("execution") != self.watch.execution:
            return
        self.pending.add(event.get("execution", EVERYTHING))
        self.wake.set()

    async def _pump(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            changed, self.pending = self.pending, set()
            try:
                frame = await render(self.watch, changed)
            except Exception:  # a bad render must not end the socket; the next change retries
                log.exception("status render failed")
                continue
            if frame:
                await self.send(text_data=frame)
