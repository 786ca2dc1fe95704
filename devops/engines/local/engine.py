"""LocalEngine: runs each execution in its own runner process on this machine (DESIGN §5).

Process model (docs/architecture.md, "Local engine"):
  * run(spec) claims the execution's run directory under a file lock and starts
    ONE runner (double fork + setsid: its own session, reparented to init, so a
    kill -9 of the controller leaves it running). A second run() for the same
    execution name returns the existing handle and starts nothing: the
    controller may die between run() and saving the handle.
  * The runner writes `state.json` atomically; sync() only reads it (plus
    /proc for liveness) - no waiting, no Django, no database.
  * A runner that is gone (pid missing, zombie, or reused: start time differs)
    without a final state is reported Failed with the reason, and whatever it
    left in its session or cgroups is killed.
  * stop() asks the runner to abort (SIGTERM: running steps killed, Aborted);
    after `stop_grace` seconds it kills the runner's whole session itself.
    With wait=False (the controller) it never waits: it returns False while
    the grace period runs and is called again on a later pass.
  * cleanup() deletes the workspace and everything in the run directory but
    the runner's bookkeeping (`KEEP_AFTER_CLEANUP`): spec.json (secrets),
    registry auth files, SSH keys, registries.conf, env files; step logs live
    in the LogStore and stay. The rest of the run directory goes when the
    retention ends (devops/controller/prune.py).
Start methods: "fork" (default: the runner is forked from the already-imported
controller and never execs; ~150 ms sooner than a fresh interpreter, which
must import pydantic) or "exec" (`python -m devops.engines.local.runner RUN_DIR`).
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from devops.engines.base import PipelineEngine, RunReport, RunSpec
from devops.engines.local import state as st
from devops.engines.local.errors import RunnerStartError
from devops.engines.local.limits import release_execution
from devops.engines.local.options import LocalOptions
from devops.engines.local.runner import serve, warm_up, write_pidfile  # a forked runner starts warm
from devops.engines.local.runtimes.container import remove_containers

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")
_OLD = re.compile(r"\.[0-9]+\.old$")  # a run directory set aside by rerun()
# A claimed run directory without a runner.json after this long: the runner never started.
START_GRACE = 30.0
_warm: list[bool] = []
# What cleanup() leaves in a run directory: state and pid bookkeeping that
# sync() and rerun() still read, and the runner's own log. Anything else a run
# wrote (spec.json with every secret, containers/auth-*.json, ssh/, env and
# config files of steps) may hold a credential and is deleted, whoever wrote it.
KEEP_AFTER_CLEANUP = frozenset({"state.json", "runner.json", "runner.log", "claimed", ".lock", "stop"})


def remove_run_secrets(rd: Path) -> None:
    """Delete everything in run directory `rd` except KEEP_AFTER_CLEANUP (idempotent)."""
    try:
        entries = list(os.scandir(rd))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.name in KEEP_AFTER_CLEANUP:
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                pass


class LocalEngine(PipelineEngine):
    name = "local"

    def __init__(self, options: LocalOptions | None = None, **overrides: Any) -> None:
        self._options = options
        self._overrides = overrides
        if not _warm:
            # Import what runners need now, at controller start: every forked
            # runner then starts with it loaded (the first trigger included).
            warm_up()
            _warm.append(True)

    @classmethod
    def from_settings(cls, **overrides: Any) -> LocalEngine:
        """The engine as Django settings configure it (what the controller uses)."""
        return cls(LocalOptions.from_settings(**overrides))

    @property
    def options(self) -> LocalOptions:
        if self._options is None:
            self._options = LocalOptions.from_settings(**self._overrides)
        return self._options

    # -- paths --------------------------------------------------------------------
    def run_dir(self, execution: str) -> Path:
        if not _NAME.fullmatch(execution):
            raise ValueError(f"bad execution name {execution!r}")
        return self.options.runs_root / execution

    def workspace(self, execution: str) -> Path:
        self.run_dir(execution)  # validates the name
        return self.options.workspace_dir / execution

    def _rd(self, spec: RunSpec, handle: dict[str, Any] | None) -> Path:
        if handle and handle.get("run_dir"):
            return Path(handle["run_dir"])
        return self.run_dir(spec.execution)

    # -- contract -----------------------------------------------------------------
    def run(self, spec: RunSpec) -> dict[str, Any]:
        rd = self.run_dir(spec.execution)
        rd.parent.mkdir(parents=True, exist_ok=True)
        rd.mkdir(mode=0o700, exist_ok=True)
        with _locked(rd / ".lock"):
            if (rd / "claimed").exists():
                return self._handle(spec, rd)
            st.write_json(
                rd / "spec.json", {"spec": st.spec_to_json(spec), "options": self.options.to_json()}
            )
            st.write_json(rd / "state.json", st.initial_state(spec))
            (rd / "claimed").touch()
            self.workspace(spec.execution).parent.mkdir(parents=True, exist_ok=True)
            try:
                self._start(rd, spec)
            except BaseException:
                (rd / "claimed").unlink(
                    missing_ok=True
                )  # nothing runs: the next run() may start it
                raise
            return self._handle(spec, rd)

    def sync(self, spec: RunSpec, handle: dict[str, Any]) -> RunReport:
        rd = self._rd(spec, handle)
        state = st.read_json(rd / "state.json")
        if state is None:
            return RunReport(
                state="Failed",
                error=f"no runner state for {spec.execution} (run directory missing)",
            )
        if state["state"] in st.FINISHED:
            return st.report_from_state(state)
        info = st.read_json(rd / "runner.json")
        if info is None:
            claimed = rd / "claimed"
            if claimed.exists() and time.time() - claimed.stat().st_mtime < START_GRACE:
                return st.report_from_state(state)
            return self._declare_dead(rd, spec.execution, None, "the runner process never started")
        if st.runner_alive(info):
            return st.report_from_state(state)
        return self._declare_dead(
            rd,
            spec.execution,
            info,
            f"runner process {info['pid']} died (killed by signal 9?) before finishing",
        )

    def stop(self, spec: RunSpec, handle: dict[str, Any], *, wait: bool = True) -> bool:
        """Ask the runner to abort (SIGTERM); kill its session after `stop_grace` seconds.

        The grace period runs from the first call (the `stop` file's mtime),
        so with `wait=False` (the controller) each call returns at once:
        False while the runner still has time to abort by itself, True once
        the run is stopped and marked Aborted.
        """
        rd = self._rd(spec, handle)
        state = st.read_json(rd / "state.json")
        info = st.read_json(rd / "runner.json")
        if state is not None and state["state"] not in st.FINISHED:
            stop_file = rd / "stop"
            first = not stop_file.exists()
            if first:
                stop_file.touch()
            if info is not None and st.runner_alive(info):
                if first:
                    try:
                        os.kill(int(info["pid"]), signal.SIGTERM)
                    except ProcessLookupError:
                        pass
                deadline = stop_file.stat().st_mtime + self.options.stop_grace
                while wait and time.time() < deadline and st.runner_alive(info):
                    time.sleep(0.02)
                if not wait and time.time() < deadline and st.runner_alive(info):
                    return False  # still within its grace period: ask again on a later pass
        # Whatever is still there (runner stuck, or steps it left): kill the whole session.
        if info is not None:
            st.kill_session(int(info["sid"]))
        release_execution(spec.execution, self.options.cgroup_scope)
        state = st.read_json(rd / "state.json")
        if state is not None and state["state"] not in st.FINISHED:
            st.write_json(
                rd / "state.json",
                st.finish_state(state, "Aborted", "stopped", step_state="Aborted"),
            )
        return True

    def can_reach(self, spec: RunSpec, handle: dict[str, Any]) -> bool:
        """Whether the run's directory (its state and runner) is in this engine's data dir.

        A handle's `run_dir` is an absolute path on the machine that started
        the run; another machine (its own data dir) must not take a path of
        the same name for that run's.
        """
        rd = self._rd(spec, handle)
        return rd.is_relative_to(self.options.runs_root) and (rd / "state.json").exists()

    def cleanup(self, spec: RunSpec, handle: dict[str, Any]) -> None:
        rd = self._rd(spec, handle)
        info = st.read_json(rd / "runner.json")
        if info is not None and st.runner_alive(info):
            state = st.read_json(rd / "state.json")
            if state is None or state["state"] not in st.FINISHED:
                return  # still running: cleanup is for finished executions
            # Finished: the runner is only sweeping up and exiting; give it a moment.
            end = time.monotonic() + 2.0
            while st.runner_alive(info) and time.monotonic() < end:
                time.sleep(0.01)
        if info is not None:
            st.kill_session(int(info["sid"]))
        release_execution(spec.execution, self.options.cgroup_scope)
        remove_containers(self.options.containers_root, spec.execution)
        shutil.rmtree(self.workspace(spec.execution), ignore_errors=True)
        remove_run_secrets(rd)

    def stored_runs(self) -> list[tuple[str, str, float]]:
        """Run directories and workspaces on this machine: (entry, execution, newest mtime).

        An entry is a directory name under the runs root or the workspace root
        (`<execution>`, or `<execution>.<ms>.old` for a run set aside by rerun).
        """
        found: dict[str, float] = {}
        for root in (self.options.runs_root, self.options.workspace_dir):
            try:
                entries = list(os.scandir(root))
            except FileNotFoundError:
                continue
            for entry in entries:
                if not entry.is_dir(follow_symlinks=False) or not _NAME.fullmatch(entry.name):
                    continue
                try:
                    mtime = entry.stat(follow_symlinks=False).st_mtime
                except FileNotFoundError:
                    continue
                found[entry.name] = max(found.get(entry.name, 0.0), mtime)
        return [(name, _OLD.sub("", name), mtime) for name, mtime in sorted(found.items())]

    def prune(self, entry: str) -> bool:
        """Delete run directory and workspace `entry` (logs live in the LogStore and stay).

        Refused (False) while a runner of that directory still runs.
        """
        if not _NAME.fullmatch(entry):
            raise ValueError(f"bad run entry {entry!r}")
        rd = self.options.runs_root / entry
        info = st.read_json(rd / "runner.json")
        if info is not None and st.runner_alive(info):
            return False
        execution = _OLD.sub("", entry)
        if entry == execution:
            release_execution(execution, self.options.cgroup_scope)
            remove_containers(self.options.containers_root, execution)
        remove_run_secrets(rd)  # credentials first, in case the tree cannot be removed whole
        shutil.rmtree(rd, ignore_errors=True)
        shutil.rmtree(self.options.workspace_dir / entry, ignore_errors=True)
        return not rd.exists()

    # -- helpers ------------------------------------------------------------------
    def _handle(self, spec: RunSpec, rd: Path) -> dict[str, Any]:
        info = st.read_json(rd / "runner.json") or {}
        return {
            "engine": self.name,
            "run_dir": str(rd),
            "workspace": str(self.workspace(spec.execution)),
            **{k: info[k] for k in ("pid", "sid", "start_time") if k in info},
        }

    def _declare_dead(
        self, rd: Path, execution: str, info: dict[str, Any] | None, reason: str
    ) -> RunReport:
        with _locked(rd / ".lock"):
            state = st.read_json(rd / "state.json")
            if state is None or state["state"] in st.FINISHED:  # it finished after all
                return (
                    st.report_from_state(state)
                    if state
                    else RunReport(state="Failed", error=reason)
                )
            if info is not None:
                st.kill_session(int(info["sid"]))
            release_execution(execution, self.options.cgroup_scope)
            st.finish_state(state, "Failed", reason, step_state="Failed")
            st.write_json(rd / "state.json", state)
            return st.report_from_state(state)

    def _start(self, rd: Path, spec: RunSpec) -> None:
        """Double fork: the runner leads its own session and is nobody's child here (no zombies)."""
        opts = self.options
        r, w = os.pipe()
        try:
            pid = os.fork()
        except OSError as exc:
            os.close(r)
            os.close(w)
            raise RunnerStartError(f"cannot fork the runner: {exc.strerror}") from None
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                os.close(r)
                os.setsid()
                runner_pid = os.fork()
                if runner_pid == 0:
                    _become_runner(rd, spec, opts, w)
                code = 0  # the runner itself reports its pid through the pipe
            finally:
                os._exit(code)
        os.close(w)
        os.waitpid(pid, 0)
        with os.fdopen(r, "rb") as f:
            raw = f.read()
        if not raw:
            raise RunnerStartError(f"the runner of {spec.execution} did not start")
        runner_pid = int(raw.decode().split()[0])
        if not (rd / "runner.json").exists():
            stat = st.proc_stat(runner_pid)
            if stat is not None:
                st.write_json(
                    rd / "runner.json", {"pid": runner_pid, "sid": stat[1], "start_time": stat[2]}
                )


def _become_runner(
    rd: Path, spec: RunSpec, opts: LocalOptions, notify: int
) -> None:  # pragma: no cover
    """In the forked grandchild: detach from everything the controller holds, then run."""
    code = 70
    try:
        # Forked without exec, the runner would still read `manage.py runcontroller`
        # in `ps`, and `pkill -f runcontroller` would kill every running execution.
        import setproctitle

        setproctitle.setproctitle(f"slipway-runner {spec.execution}")
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD, signal.SIGALRM):
            signal.signal(sig, signal.SIG_DFL)
        signal.setitimer(signal.ITIMER_REAL, 0)
        devnull = os.open(os.devnull, os.O_RDWR)
        logfd = os.open(rd / "runner.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(devnull, 0)
        os.dup2(logfd, 1)
        os.dup2(logfd, 2)
        if opts.start_method == "exec":
            os.write(notify, f"{os.getpid()}\n".encode())
            os.closerange(3, 65536)
            os.chdir(Path(__file__).resolve().parents[3])
            os.execv(sys.executable, [sys.executable, "-m", "devops.engines.local.runner", str(rd)])
        # Fork mode: file descriptors the controller holds (database sockets, a
        # web server's listening socket) must not stay open in the runner, but
        # Python objects still refer to them; closing them would let a later
        # finaliser close one of OUR files that reused the number. So each is
        # replaced by /dev/null: the number stays taken, the resource is released.
        keep = {0, 1, 2, notify, devnull, logfd}
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd not in keep:
                try:
                    os.dup2(devnull, fd)
                except OSError:
                    pass
        _forget_inherited_threads()
        sys.stdin = open(0, closefd=False)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        write_pidfile(rd)
        os.write(notify, f"{os.getpid()}\n".encode())
        os.close(notify)
        code = serve(rd, spec, opts)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)


def _forget_inherited_threads() -> None:  # pragma: no cover - runs in the forked runner
    """Per-process helpers whose thread did not survive the fork must be rebuilt, not reused.

    The live-log publisher (devops.logs.live) runs an event loop in a thread;
    a forked child inherits the object without the thread (and maybe its lock
    held). Dropping the cache makes the runner create its own on first use.
    """
    import threading

    live = sys.modules.get("devops.logs.live")
    if live is not None and hasattr(live, "_publishers"):
        live._publishers = {}
        live._publishers_lock = threading.Lock()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
