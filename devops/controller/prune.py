"""Retention: run directories and workspaces of finished executions are deleted after a while.

`cleanup()` already removed every secret when a run finished; what is left
(state.json, the runner's own log, a workspace a failed cleanup kept, runs
set aside by a rerun) goes `SLIPWAY_RUN_RETENTION` after the execution
ended. Step logs live in the log store and are never touched here.

The engine says what it keeps on this machine (`stored_runs`) and deletes an
entry (`prune`); this module decides from the database which ones are due:

- execution finished, its stop not pending, ended before the cutoff → prune;
- an entry set aside by rerun, or with no execution row at all (its
  pipeline or project was deleted), untouched since the cutoff → prune;
- anything active, or whose runner still runs → keep.
"""
from __future__ import annotations

import logging
import time

from django.conf import settings

from devops.models import ExecutionState, PipelineExecution

log = logging.getLogger(__name__)

# Looking costs a directory listing and one query per 500 entries; once a minute is plenty.
PRUNE_INTERVAL = 60.0
_CHUNK = 500  # names per IN (...) query (SQLite's variable limit)


def due_entries(stored: list[tuple[str, str, float]], retention: float, now: float) -> list[str]:
    """The entries of `stored` (engine.stored_runs()) whose retention has ended."""
    cutoff = now - retention
    names = sorted({execution for _e, execution, _m in stored})
    rows: dict[str, dict] = {}
    for i in range(0, len(names), _CHUNK):
        for row in PipelineExecution.objects.filter(name__in=names[i:i + _CHUNK]).values(
                "name", "execution_state", "ended", "abort_requested"):
            rows[row["name"]] = row
    finished = ExecutionState.finished()
    due = []
    for entry, execution, mtime in stored:
        row = rows.get(execution)
        if row is None or entry != execution:
            if mtime < cutoff:  # no row to go by (deleted, or set aside by a rerun): its own age
                due.append(entry)
            continue
        if row["execution_state"] not in finished or row["abort_requested"] or row["ended"] is None:
            continue
        if row["ended"].timestamp() < cutoff:
            due.append(entry)
    return due


def prune_finished(engine, retention: float, now: float | None = None) -> int:
    """Prune every due entry of `engine`; the number pruned. One failure never stops the rest."""
    now = time.time() if now is None else now
    pruned = 0
    for entry in due_entries(engine.stored_runs(), retention, now):
        try:
            if engine.prune(entry):
                pruned += 1
                log.info("pruned %s (finished more than %s ago)", entry, _human(retention))
        except Exception:
            log.warning("pruning %s failed; will retry", entry, exc_info=True)
    return pruned


def tick_prune(controller) -> bool:
    """Controller step: every PRUNE_INTERVAL seconds, prune what is due. True if anything was pruned."""
    if controller.stopping:
        return False
    mono = time.monotonic()
    # Kept on the controller (not here) so each controller, and each test's, has its own clock.
    if mono < getattr(controller, "_next_prune", 0.0):
        return False
    controller._next_prune = mono + PRUNE_INTERVAL
    try:
        return prune_finished(controller.engine, settings.SLIPWAY_RUN_RETENTION) > 0
    except Exception:  # a database hiccup: next interval
        log.warning("pruning finished runs failed; will retry", exc_info=True)
        return False


def _human(seconds: float) -> str:
    return f"{seconds / 3600:g}h" if seconds >= 3600 else f"{seconds:g}s"
