"""Pure helpers for reading engine reports: times, and a stage's state from its steps'.

The rows are written by `devops.controller.actions.do_report` (the one
place step and stage states change); nothing here touches the database.
"""
from __future__ import annotations

from datetime import UTC, datetime

from devops.models import ExecutionState as S
from devops.models import StepStatus


def dt(ts: float | None) -> datetime | None:
    """Unix time (as engines report it) -> an aware datetime."""
    return None if ts is None else datetime.fromtimestamp(ts, tz=UTC)


def stage_state(steps: list[StepStatus]) -> tuple[str, datetime | None, datetime | None]:
    """A stage's state from its steps' (steps of a stage run in parallel)."""
    if not steps:
        return S.SKIPPED, None, None
    states = {s.state for s in steps}
    started = min((s.started for s in steps if s.started), default=None)
    ends = [s.ended for s in steps if s.ended]
    if states <= {S.SKIPPED}:
        return S.SKIPPED, None, None
    if S.BUILDING in states or (S.WAITING in states and started is not None):
        return S.BUILDING, started, None
    if S.WAITING in states:
        return S.WAITING, None, None
    for final in (S.FAILED, S.ABORTED, S.DENIED):
        if final in states:
            return final, started, max(ends, default=None)
    return S.SUCCESS, started, max(ends, default=None)
