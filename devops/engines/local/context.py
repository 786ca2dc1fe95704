"""Plain data shared by the local engine's runner, its step kinds, step runtimes and caches.

A step kind (clone, run script, publish image, apply YAML, ...) is a function
`run(ctx: StepContext) -> StepResult`. Runtimes execute commands for it; the
cache package turns the step's effective `cache:` into mounts/links
(`StepContext` is its `devops.cache.step.CacheStep`). None of this touches Django.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from devops.engines.base import RunSpec
from devops.pipeline.config import Step


@dataclass(frozen=True)
class Mount:
    """A host directory made visible to a step at `target`.

    `target` is absolute (inside the container / sandbox), or relative to the
    workspace (the host runtime links it into the workspace instead).
    """

    source: Path
    target: str
    read_only: bool = False


class StepLog(Protocol):
    def write(self, data: bytes) -> None: ...


@dataclass
class StepContext:
    spec: RunSpec
    stage: int  # counts the Clone stage
    step: int
    config: Step  # after ${CICD_*} substitution
    workspace: Path  # the execution's workspace (the repository checkout)
    run_dir: Path  # the execution's private directory (state, pid files), outside the workspace
    data_dir: Path  # SLIPWAY_DATA_DIR
    env: dict[str, str]  # the complete environment of the step (CICD_*, env, envFrom)
    log: StepLog  # the step's log (masked, capped by the logs package)
    deadline: float  # time.monotonic() by which the whole execution must end
    mounts: list[Mount] = field(default_factory=list)  # caches etc., filled before the step runs
    # The execution's StepRuntime (runtimes/base.py); step kinds run their commands through it.
    runtime: Any = None
    # Options of the local engine (options.LocalOptions), e.g. `containers_root` for buildah.
    options: Any = None
    # Set when the step must end now (timeout, stop, log limit); `kill()` sets it.
    cancelled: threading.Event = field(default_factory=threading.Event)
    _kill_hooks: list[Callable[[str], None]] = field(default_factory=list, repr=False)
    # The cache package's handle for this step (devops.cache.StepCaches), set before it runs.
    step_caches: Any = None

    def add_mount(self, source: Path, target: str, read_only: bool = False) -> None:
        """Show `source` to the step at `target` (devops.cache.step.CacheStep)."""
        self.mounts.append(Mount(source=Path(source), target=target, read_only=read_only))

    def on_kill(self, hook: Callable[[str], None]) -> None:
        """Register how to kill what this step started (called with the reason, from any thread)."""
        self._kill_hooks.append(hook)
        if self.cancelled.is_set():
            hook("cancelled")

    def kill(self, reason: str) -> None:
        """End the step now: every registered hook runs (idempotent)."""
        self.cancelled.set()
        for hook in list(self._kill_hooks):
            hook(reason)

    def say(self, line: str) -> None:
        """A line from Slipway itself into the step's log (e.g. which runtime and why)."""
        self.log.write(b"[slipway] " + line.encode() + b"\n")


@dataclass(frozen=True)
class StepResult:
    exit_code: int
    message: str = ""  # why it failed, shown on the step
    image_digest: str = ""  # publishImage steps
