"""The ONE transition table: every state, its meaning, and where it may go next.

Executions, stages and steps share it: an execution moves one edge at a
time (`check_transition`); a step the engine reports may have moved several
edges between two syncs (Waiting -> Building -> Success), so a step may take
any state reachable in the table (`check_step_transition`). Nothing leaves a
finished state.
"""
from __future__ import annotations

from functools import cache

from django.utils import timezone

from devops.controller.actions.errors import InvalidTransition
from devops.models import ExecutionState as S


def allowed_transitions() -> dict[str, frozenset[str]]:
    """Every state with its one-line meaning, and where it may go next.

    Waiting   created (not admitted) or admitted and being handed to the engine
    Queueing  over the project's executor-quota; admitted (-> Waiting) when a slot frees
    Building  the engine runs it; stages/steps carry their own states
    Success   finished; every step passed or was skipped
    Failed    finished; a step failed, or it could not be run (error says why)
    Aborted   finished; stopped by a user (its runner is stopped by the controller)
    Denied    finished; refused before running (e.g. an untrusted pull request)
    Skipped   a stage/step whose `when` did not match (an execution whose every
              stage was skipped is stored as Success)
    Finished states are final: a rerun makes a NEW execution.
    Admission (engine set) and the start (engine handle set) keep an
    execution Waiting / move it to Building; see the package docstring.
    """
    return {
        S.WAITING: frozenset({S.QUEUEING, S.BUILDING, S.FAILED, S.ABORTED, S.DENIED, S.SKIPPED}),
        S.QUEUEING: frozenset({S.WAITING, S.FAILED, S.ABORTED, S.DENIED}),
        S.BUILDING: frozenset({S.SUCCESS, S.FAILED, S.ABORTED}),
        S.SUCCESS: frozenset(),
        S.FAILED: frozenset(),
        S.ABORTED: frozenset(),
        S.DENIED: frozenset(),
        S.SKIPPED: frozenset(),
    }


_TRANSITIONS = allowed_transitions()


def check_transition(old: str, new: str) -> None:
    if new not in _TRANSITIONS.get(old, frozenset()):
        raise InvalidTransition(f"an execution cannot go from {old} to {new}")


@cache
def reachable(old: str) -> frozenset[str]:
    """Every state that can follow `old` through one or more edges of the table."""
    seen: set[str] = set()
    todo = list(_TRANSITIONS.get(old, ()))
    while todo:
        state = todo.pop()
        if state not in seen:
            seen.add(state)
            todo.extend(_TRANSITIONS.get(state, ()))
    return frozenset(seen)


def is_final(state: str) -> bool:
    return not _TRANSITIONS.get(state)


def check_step_transition(old: str, new: str) -> bool:
    """Whether a stage/step in `old` may take `new` (the same state: no change, allowed)."""
    return new == old or new in reachable(old)


def sources_of(new: str) -> list[str]:
    """The states from which `new` may be entered (for conditional UPDATEs)."""
    return [old for old, targets in _TRANSITIONS.items() if new in targets]


def set_condition(conditions: list[dict], type_: str, status: str, reason: str = "", message: str = "") -> list[dict]:
    """Rancher-style conditions list with `type_` replaced."""
    now = timezone.now().isoformat()
    rest = [c for c in conditions or [] if c.get("type") != type_]
    return [*rest, {"type": type_, "status": status, "lastUpdateTime": now, "reason": reason, "message": message}]


