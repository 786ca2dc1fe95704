"""What the cache package needs from the step being run: the `CacheStep` interface.

The local engine's `StepContext` is one; the engine calls
`prepare_step_caches(ctx)` / `finish_step_caches(ctx, result)` with it. The
cache package never imports the engine (engines -> cache, one direction);
a mount is added through `add_mount`, so the engine keeps its own `Mount` type.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from devops.pipeline.config import PipelineConfig, Step


class CacheRun(Protocol):
    """The execution (the engine's RunSpec): which pipeline, its config and project settings."""

    @property
    def project_id(self) -> str: ...
    @property
    def pipeline_id(self) -> str: ...
    @property
    def config(self) -> PipelineConfig: ...
    @property
    def settings(self) -> dict[str, str]: ...


class CacheStep(Protocol):
    spec: CacheRun
    stage: int                 # index in spec.config.stages
    step: int
    config: Step               # after ${CICD_*} substitution
    run_dir: Path              # private to the execution, outside the workspace
    data_dir: Path             # SLIPWAY_DATA_DIR (default cache root)
    env: dict[str, str]        # the step's environment; mirrors add to it
    runtime: Any               # `.name`: "container", "sandbox", "host", "dummy"
    step_caches: Any           # set by prepare_step_caches, read by finish_step_caches

    def say(self, line: str) -> None:
        """A line from Slipway into the step's log."""

    def add_mount(self, source: Path, target: str, read_only: bool = False) -> None:
        """Show `source` to the step at `target` (absolute, or relative to the workspace)."""
