"""The run directory of one execution: spec, state file, pid file; process identity.

Layout of `<runs root>/<execution>/` (mode 0700, never inside a workspace):

    spec.json     RunSpec + LocalOptions (secrets included: removed by cleanup)
    runner.json   {"pid", "sid", "start_time"}: who runs it (start_time detects pid reuse)
    state.json    the execution's progress, rewritten atomically (tmp + rename)
    runner.log    the runner's own stderr (tracebacks), never step output

`state.json` is the only channel from the runner to the engine: `sync()`
reads it and nothing else, so it must always be complete JSON.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from devops.engines.base import GitAuth, RunReport, RunSpec, StepReport

FINISHED = frozenset({"Success", "Failed", "Aborted", "Denied", "Skipped"})


# --- atomic JSON --------------------------------------------------------------


def write_json(path: Path, data: Any) -> None:
    """Write `data` to `path` atomically: readers see the old or the new file, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, separators=(",", ":"))
    os.replace(tmp, path)


def read_json(path: Path) -> Any | None:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


# --- spec ----------------------------------------------------------------------


def spec_to_json(spec: RunSpec) -> dict[str, Any]:
    data = {k: getattr(spec, k) for k in spec.__dataclass_fields__}
    data["config"] = spec.config.to_json()
    data["git_auth"] = asdict(spec.git_auth)
    data["mask"] = list(spec.mask)
    data["registry_auth"] = {h: list(v) for h, v in spec.registry_auth.items()}
    return data


def spec_from_json(data: dict[str, Any]) -> RunSpec:
    from devops.pipeline.config import PipelineConfig

    values = dict(data)
    values["config"] = PipelineConfig.from_json(values["config"])
    values["git_auth"] = GitAuth(**values.get("git_auth", {}))
    values["mask"] = tuple(values.get("mask", ()))
    values["registry_auth"] = {h: tuple(v) for h, v in values.get("registry_auth", {}).items()}
    return RunSpec(**values)


# --- state ---------------------------------------------------------------------


def initial_state(spec: RunSpec) -> dict[str, Any]:
    """Every step Waiting; the shape `report_from_state` reads."""
    steps = [
        {"stage": i, "step": j, "state": "Waiting"}
        for i, stage in enumerate(spec.config.stages)
        for j, _ in enumerate(stage.steps)
    ]
    return {
        "state": "Building",
        "started": None,
        "ended": None,
        "error": "",
        "node": "",
        "steps": steps,
    }


def report_from_state(state: dict[str, Any]) -> RunReport:
    steps = tuple(
        StepReport(
            stage=s["stage"],
            step=s["step"],
            state=s["state"],
            started=s.get("started"),
            ended=s.get("ended"),
            exit_code=s.get("exit_code"),
            message=s.get("message", ""),
            runtime=s.get("runtime", ""),
            image_digest=s.get("image_digest", ""),
            log_size=s.get("log_size", 0),
            handle=s.get("handle", {}),
        )
        for s in state.get("steps", ())
    )
    return RunReport(
        state=state["state"],
        steps=steps,
        started=state.get("started"),
        ended=state.get("ended"),
        error=state.get("error", ""),
        node=state.get("node", ""),
    )


def finish_state(
    state: dict[str, Any], final: str, error: str, *, step_state: str
) -> dict[str, Any]:
    """Mark the execution `final` and every Building step `step_state` with `error`.

    Used when the runner cannot say it itself (killed, or stopped by force).
    Waiting steps stay Waiting: they never ran.
    """
    now = time.time()
    for s in state["steps"]:
        if s["state"] == "Building":
            s["state"] = step_state
            s["ended"] = now
            s["message"] = error
    state["state"] = final
    state["error"] = error
    state["ended"] = state.get("ended") or now
    return state


# --- processes -------------------------------------------------------------------


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state letter, session id, start time in clock ticks) of `pid`, None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(b")") + 2 :].split()
    return fields[0].decode(), int(fields[3]), int(fields[19])


def runner_alive(info: dict[str, Any]) -> bool:
    """True while the process in runner.json still runs (same pid AND same start time)."""
    st = proc_stat(int(info["pid"]))
    if st is None:
        return False
    letter, _sid, start = st
    return letter not in ("Z", "X") and start == int(info["start_time"])


def session_pids(sid: int) -> list[int]:
    """Every live process of a runner's session `sid` (the runner and the steps it started).

    A runner's session leader (the intermediate child of the double fork,
    pid == sid) exits before run() returns. So a live process whose pid IS
    `sid` means the number was reused by someone else's new session, long
    after ours ended: then nothing here is ours and the answer is [].
    """
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        if st is not None and st[1] == sid and st[0] not in ("Z", "X"):
            if int(name) == sid:
                return []
            out.append(int(name))
    return out


def kill_session(sid: int, sig: int = signal.SIGKILL) -> int:
    """Signal every process of the runner's session; returns how many were signalled."""
    n = 0
    for _ in range(5):  # processes may fork while we kill: repeat until none is left
        pids = [p for p in session_pids(sid) if p != os.getpid()]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, sig)
                n += 1
            except ProcessLookupError:
                pass
        time.sleep(0.01)
    return n
