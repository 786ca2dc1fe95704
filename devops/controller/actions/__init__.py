"""The ONE place execution, stage and step state changes (zulip-style `do_*` actions).

The API, the CLI, the web UI, triggers and the controller loop call these;
nothing else writes `execution_state`, a stage's or a step's `state`. Each
write goes through the one transition table (`transitions.py`) and is a
conditional UPDATE on the state it expects, so a finished execution is
never changed again. Each action announces its change after commit
(`execution_changed`) and rings the controllers' doorbell.

One verb per module:
    run       do_run, do_rerun    a new execution (created: Waiting, no engine)
    admit     do_admit, do_queue  the quota decision (controller)
    start     do_start            handed to the engine: Building with its handle (controller)
    report    do_report           the engine's step states copied in (controller)
    stop      do_stop, do_stopped a user's abort; the runner stopped (controller)
    finish    do_finish           the end: Success, Failed, Aborted, Denied
    retry     do_unit_failed      a controller unit raised on one row: retry with backoff, then Failed

Lifecycle (DESIGN §4) and how it is stored:
    created           Waiting,  engine == ""       (not yet admitted)
    over quota        Queueing, engine == ""
    admitted          Waiting,  engine == <name>   Initialized=Unknown
    handed to engine  Building, engine_handle set  Initialized=True
    finished          Success | Failed | Aborted | Denied   (never changed again)
An execution takes a quota slot from admission until it finishes; after a
stop it keeps `abort_requested` until the controller has stopped its runner.
"""
from __future__ import annotations

from devops.controller.actions.admit import do_admit, do_queue
from devops.controller.actions.errors import (
    ActionError,
    BranchNotAllowed,
    InvalidTransition,
    PipelineFileInvalid,
    RepositoryError,
    format_problem,
)
from devops.controller.actions.finish import do_finish, update_pipeline_status
from devops.controller.actions.notify import (
    NOTIFY_CHANNEL,
    announce_on_commit,
    execution_changed,
    ring_controllers,
)
from devops.controller.actions.report import do_report
from devops.controller.actions.retry import (
    UNIT_MAX_ATTEMPTS,
    do_unit_failed,
    do_unit_ok,
    unit_backoff,
)
from devops.controller.actions.run import _create_execution, do_rerun, do_run, step_label
from devops.controller.actions.source import Source, git_auth_of, parse_config, read_source
from devops.controller.actions.start import adopt_for_node, claim_for_node, do_start
from devops.controller.actions.stop import do_stop, do_stopped
from devops.controller.actions.transitions import (
    allowed_transitions,
    check_step_transition,
    check_transition,
    set_condition,
    sources_of,
)

__all__ = [
    "NOTIFY_CHANNEL",
    "UNIT_MAX_ATTEMPTS",
    "ActionError",
    "BranchNotAllowed",
    "InvalidTransition",
    "PipelineFileInvalid",
    "RepositoryError",
    "Source",
    "_create_execution",
    "adopt_for_node",
    "allowed_transitions",
    "announce_on_commit",
    "check_step_transition",
    "check_transition",
    "claim_for_node",
    "do_admit",
    "do_finish",
    "do_queue",
    "do_report",
    "do_rerun",
    "do_run",
    "do_start",
    "do_stop",
    "do_stopped",
    "do_unit_failed",
    "do_unit_ok",
    "execution_changed",
    "format_problem",
    "git_auth_of",
    "parse_config",
    "read_source",
    "ring_controllers",
    "set_condition",
    "sources_of",
    "step_label",
    "unit_backoff",
    "update_pipeline_status",
]
