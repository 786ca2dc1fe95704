"""Errors of the local engine. A failing step is a result, not one of these."""

from __future__ import annotations

from devops.engines.base import PermanentEngineError, TemporaryEngineError


class StepStartError(Exception):
    """A step could not be started (missing tool, image not found, bad mount).

    The step fails with this message; the runner carries on with the next
    decision (the stage fails), it never falls back to another runtime.
    """


class RuntimeUnavailable(StepStartError):
    """The configured step runtime cannot run on this machine (tool missing)."""


class CloneError(StepStartError):
    """git could not fetch the repository or the exact commit."""


class RunnerStartError(TemporaryEngineError):
    """The runner process could not be started (fork/exec failed); try again."""


class RunDirCorrupt(PermanentEngineError):
    """The run directory of an execution is unreadable (spec or state)."""
