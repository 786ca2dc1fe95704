"""`host`: the step is a plain process on this machine, in the workspace.

For trusted setups only: the step sees everything the runner's user sees,
and shares the host's network: every service of this machine (PostgreSQL,
Redis, the web port on 127.0.0.1) is reachable; the first log line says so.
The step's `image` is not used. Cache mounts with a workspace-relative target
are symlinked into the workspace; absolute targets cannot be honoured on the
host (DESIGN §10) and fail the step.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from devops.engines.local.errors import StepStartError
from devops.engines.local.runtimes.base import HOST_PATH, StepProcess, StepRuntime, spawn

if TYPE_CHECKING:
    from devops.engines.local.context import StepContext
    from devops.engines.local.limits import Enforcement


class HostRuntime(StepRuntime):
    name = "host"

    def network_banner(self) -> str:
        return (
            "network: host (NOT isolated: the host runtime cannot give a step its own network;"
            " it reaches every service of this machine, 127.0.0.1 included)"
        )

    def start_step(
        self, ctx: StepContext, argv: list[str], limits: Enforcement | None
    ) -> StepProcess:
        link_mounts(ctx)
        env = {"PATH": HOST_PATH, "HOME": os.environ.get("HOME", "/root"), **ctx.env}
        try:
            popen = spawn(argv, env=env, cwd=str(ctx.workspace), limits=limits)
        except OSError as exc:
            raise StepStartError(f"cannot start {argv[0]}: {exc.strerror}") from None
        return StepProcess(popen, enforcement=limits)


def link_mounts(ctx: StepContext) -> None:
    """Workspace-relative mounts become symlinks in the workspace (host runtime only)."""
    for m in ctx.mounts:
        if m.target.startswith("/"):
            raise StepStartError(
                f"cache path {m.target} is absolute: only the container and sandbox runtimes can mount it"
            )
        link = ctx.workspace / m.target
        if link.is_symlink() or link.exists():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(m.source, target_is_directory=True)
