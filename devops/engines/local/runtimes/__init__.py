"""Step runtimes: name -> class, and the `auto` choice (README *Step runtimes*)."""

from __future__ import annotations

import shutil
from pathlib import Path

from devops.engines.local.runtimes.base import StepProcess, StepRuntime

__all__ = ["StepProcess", "StepRuntime", "select_runtime"]


def select_runtime(setting: str, container_root: Path) -> StepRuntime:
    """The runtime for `SLIPWAY_STEP_RUNTIME=setting`; `auto` picks the strongest available.

    An explicit choice whose tool is missing still returns that runtime: its
    setup() then fails every step with a clear message (never a silent fallback).
    """
    from devops.engines.local.runtimes.container import ContainerRuntime
    from devops.engines.local.runtimes.dummy import DummyRuntime
    from devops.engines.local.runtimes.host import HostRuntime
    from devops.engines.local.runtimes.sandbox import SandboxRuntime

    if setting == "container":
        return ContainerRuntime("SLIPWAY_STEP_RUNTIME=container", root=container_root)
    if setting == "sandbox":
        return SandboxRuntime("SLIPWAY_STEP_RUNTIME=sandbox")
    if setting == "host":
        return HostRuntime("SLIPWAY_STEP_RUNTIME=host: no isolation")
    if setting == "dummy":
        return DummyRuntime("SLIPWAY_STEP_RUNTIME=dummy: nothing really runs")
    if setting != "auto":
        raise ValueError(f"unknown step runtime {setting!r}")
    if shutil.which("buildah"):
        return ContainerRuntime("auto: buildah is installed", root=container_root)
    if shutil.which("bwrap"):
        return SandboxRuntime("auto: bwrap is installed, buildah is not")
    return HostRuntime("auto: neither buildah nor bwrap is installed: no isolation")
