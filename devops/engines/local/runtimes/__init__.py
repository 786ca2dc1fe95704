"""Step runtimes: the `RUNTIMES` table (devops.kinds) and the `auto` choice (README *Step runtimes*).

`SLIPWAY_STEP_RUNTIME` is `auto` or a name of the table (devops/settings.py);
slipway.E021 fails `manage.py check` when the configured runtime's module is
missing or fails to import. `dummy` is test-only: settings accept it only with
`SLIPWAY_TEST_RUNTIMES=1` (tests/conftest.py sets it; slipway.W025 flags it).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from devops.engines.local.runtimes.base import StepProcess, StepRuntime
from devops.kinds import Kind, KindTable

__all__ = ["AUTO", "RUNTIMES", "RuntimeKind", "StepProcess", "StepRuntime", "chosen_kind", "select_runtime"]

AUTO = "auto"


@dataclass(frozen=True)
class RuntimeKind(Kind):
    # `auto` takes the first row (in table order) whose tool is on PATH; "" = any
    # machine. None = never chosen by `auto`.
    auto_tool: str | None = None
    auto_reason: str = ""
    # The constructor takes `root=` (image storage under DATA_DIR/containers).
    needs_root: bool = False


RUNTIMES: KindTable[RuntimeKind] = KindTable(
    "step runtime",
    RuntimeKind("container", "Container (buildah, the step's image)",
                "devops.engines.local.runtimes.container.ContainerRuntime",
                auto_tool="buildah", auto_reason="auto: buildah is installed", needs_root=True),
    RuntimeKind("sandbox", "Sandbox (bwrap, host tools)",
                "devops.engines.local.runtimes.sandbox.SandboxRuntime",
                auto_tool="bwrap", auto_reason="auto: bwrap is installed, buildah is not"),
    RuntimeKind("host", "Host process (no isolation)",
                "devops.engines.local.runtimes.host.HostRuntime",
                auto_tool="", auto_reason="auto: neither buildah nor bwrap is installed: no isolation"),
    RuntimeKind("dummy", "Dummy (tests: nothing really runs)",
                "devops.engines.local.runtimes.dummy.DummyRuntime", test_only=True),
)

# What `SLIPWAY_STEP_RUNTIME=<name>` says in every step's banner.
_EXPLICIT_REASON = {"host": "no isolation", "dummy": "nothing really runs"}


def chosen_kind(setting: str) -> RuntimeKind:
    """The row `SLIPWAY_STEP_RUNTIME=setting` selects on this machine (`auto`: the strongest available)."""
    if setting == AUTO:
        return next(k for k in RUNTIMES if k.auto_tool is not None
                    and (not k.auto_tool or shutil.which(k.auto_tool)))
    try:
        return RUNTIMES.get(setting)
    except LookupError:
        raise ValueError(f"unknown step runtime {setting!r}") from None


def select_runtime(setting: str, container_root: Path) -> StepRuntime:
    """The runtime for `SLIPWAY_STEP_RUNTIME=setting`; `auto` picks the strongest available.

    An explicit choice whose tool is missing still returns that runtime: its
    setup() then fails every step with a clear message (never a silent fallback).
    """
    kind = chosen_kind(setting)
    if setting == AUTO:
        reason = kind.auto_reason
    else:
        reason = f"SLIPWAY_STEP_RUNTIME={setting}"
        if setting in _EXPLICIT_REASON:
            reason += f": {_EXPLICIT_REASON[setting]}"
    cls = RUNTIMES.load(kind.name)
    return cls(reason, root=container_root) if kind.needs_root else cls(reason)
