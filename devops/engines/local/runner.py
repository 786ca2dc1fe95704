"""The runner: one process per execution, running its stages and steps (DESIGN §5).

Started by `LocalEngine.run()` (forked from the controller, or
`python -m devops.engines.local.runner RUN_DIR`). It is the leader of its own
session, so a kill -9 of the controller does not touch it, and a child
subreaper, so nothing a step leaves behind escapes the final sweep. It talks
to the engine only through files in its run directory (state.py) and rings the
controller's doorbell (`devops.doorbell.ring(data_dir)`) after every state change.
Caches are restored before and saved after every step by `devops.cache`
(`prepare_step_caches` / `finish_step_caches`), which sees the step only
through its `CacheStep` interface: the engine imports the cache, never the
reverse.

Semantics:
  * stages run in order; the steps of a stage run concurrently (one thread each);
  * `when` of a stage/step that does not match -> Skipped; the top-level
    `branch` constraint not matching -> every step Skipped, execution Skipped;
  * a failed step fails its stage and the execution; later stages do not run
    and their steps stay Waiting ("never ran"; Skipped is reserved for `when`);
  * `timeout` minutes for the whole run: every running step is killed (whole
    tree) and Failed "timed out after N minutes"; the execution Failed with it;
  * SIGTERM (engine.stop) -> running steps killed and Aborted, execution Aborted.
Never imports Django.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import psutil

from devops.cache import finish_step_caches, prepare_step_caches
from devops.doorbell import ring as ring_doorbell
from devops.engines.base import RunSpec
from devops.engines.local import state as st
from devops.engines.local.context import StepContext, StepResult
from devops.engines.local.errors import RuntimeUnavailable, StepStartError
from devops.engines.local.limits import release_execution
from devops.engines.local.options import LocalOptions
from devops.engines.local.runtimes import select_runtime
from devops.engines.local.runtimes.base import StepRuntime, UnavailableRuntime
from devops.engines.local.steps import banner, simulate, step_kind
from devops.engines.local.steps.publish_image import published_image_env
from devops.pipeline.config import Step
from devops.pipeline.substitute import substitute
from devops.quantity import QuantityError, parse_bytes

# Called around every step: f(ctx) before it runs (may add mounts and env, or
# raise to fail the step), f(ctx, result) after it ran (also when it failed).
BEFORE_STEP = (prepare_step_caches,)
AFTER_STEP = (finish_step_caches,)


def _log_cap(spec: RunSpec) -> int:
    """The project's `log-size-cap` in bytes (the 100Mi default when unset, or stored
    unreadable before the settings API checked it)."""
    from devops.logs.writer import DEFAULT_CAP

    try:
        return parse_bytes(spec.settings.get("log-size-cap") or str(DEFAULT_CAP))
    except QuantityError:
        return DEFAULT_CAP


class _StepLog:
    """The step's log writer, counting bytes; past `limit` the step is killed (never buffered)."""

    def __init__(self, writer: Any, limit: int) -> None:
        self.writer = writer
        self.limit = limit
        self.size = 0
        self.ctx: StepContext | None = None

    def write(self, data: bytes) -> None:
        if self.size >= self.limit:
            return
        if self.size + len(data) > self.limit:
            data = data[: self.limit - self.size]
            self.size = self.limit
            self.writer.write(data)
            if self.ctx is not None:
                self.ctx.kill(f"the step printed more than {self.limit} bytes (log limit); killed")
            return
        self.size += len(data)
        self.writer.write(data)


class Runner:
    def __init__(self, spec: RunSpec, options: LocalOptions, run_dir: Path) -> None:
        self.spec = spec
        self.options = options
        self.run_dir = run_dir
        self.workspace = options.workspace_dir / spec.execution
        self.lock = threading.Lock()
        self.state = st.initial_state(spec)
        self.events: queue.Queue[tuple[int, int]] = queue.Queue()
        self.abort = threading.Event()
        self.running: dict[tuple[int, int], StepContext] = {}
        self.timed_out = ""
        self.ring = ring_doorbell

    # -- state ------------------------------------------------------------------
    def _step(self, i: int, j: int) -> dict[str, Any]:
        return self.state["steps"][self._index[(i, j)]]

    def save(self, ring: bool = True) -> None:
        with self.lock:
            st.write_json(self.run_dir / "state.json", self.state)
        if ring and self.ring is not None:
            try:
                self.ring(self.options.data_dir)
            except Exception:  # the doorbell is an optimisation; the controller also polls
                pass

    def set_step(self, i: int, j: int, **values: Any) -> None:
        with self.lock:
            self._step(i, j).update(values)
        self.save()

    # -- main -------------------------------------------------------------------
    def main(self) -> str:
        self._index = {(s["stage"], s["step"]): n for n, s in enumerate(self.state["steps"])}
        self.state["started"] = time.time()
        self.state["node"] = socket.gethostname()
        self.save()
        try:
            final, error = self._run()
        except Exception as exc:  # a bug in the runner: fail the execution with the reason
            traceback.print_exc()
            final, error = "Failed", f"runner error: {exc}"
        for ctx in list(self.running.values()):
            ctx.kill("runner ending")
        with self.lock:
            # Steps still Building here were cut short by the runner itself.
            st.finish_state(
                self.state, final, error, step_state="Aborted" if final == "Aborted" else "Failed"
            )
        self.save()
        sweep_descendants()
        release_execution(self.spec.execution, self.options.cgroup_scope)
        return final

    def _run(self) -> tuple[str, str]:
        spec, cfg = self.spec, self.spec.config
        deadline = time.monotonic() + cfg.timeout * self.options.timeout_unit
        if cfg.branch is not None and spec.branch and not cfg.branch.matches(spec.branch):
            now = time.time()
            with self.lock:
                for s in self.state["steps"]:
                    s.update(state="Skipped", started=now, ended=now)
            return (
                "Skipped",
                f"branch {spec.branch!r} does not match the pipeline's branch constraint",
            )
        cfg = substitute(cfg, spec.env)
        runtime = select_runtime(self.options.step_runtime, self.options.containers_root)
        try:
            runtime.setup(self)
        except RuntimeUnavailable as exc:
            runtime = UnavailableRuntime(runtime, str(exc))
        self.before = BEFORE_STEP
        self.after = AFTER_STEP
        try:
            for i, stage in enumerate(cfg.stages):
                if self.abort.is_set() or (self.run_dir / "stop").exists():
                    return "Aborted", "stopped"
                if stage.when is not None and not stage.when.matches(
                    branch=spec.branch, event=spec.event
                ):
                    self._skip(i, range(len(stage.steps)))
                    continue
                failed = self._run_stage(i, stage.steps, runtime, deadline)
                if self.abort.is_set():
                    return "Aborted", "stopped"
                if self.timed_out:
                    return "Failed", self.timed_out
                if failed:
                    return "Failed", failed
            return "Success", ""
        finally:
            runtime.destroy()

    def _skip(self, i: int, steps: Any) -> None:
        now = time.time()
        with self.lock:
            for j in steps:
                self._step(i, j).update(state="Skipped", started=now, ended=now)
        self.save()

    def _run_stage(
        self, i: int, steps: tuple[Step, ...], runtime: StepRuntime, deadline: float
    ) -> str:
        """Run the steps of stage i concurrently; '' when all passed, else the first failure."""
        started = []
        for j, step in enumerate(steps):
            if step.when is not None and not step.when.matches(
                branch=self.spec.branch, event=self.spec.event
            ):
                self._skip(i, [j])
                continue
            t = threading.Thread(
                target=self._step_thread, args=(i, j, step, runtime, deadline), daemon=True
            )
            started.append(j)
            t.start()
        pending = set(started)
        while pending:
            # Step threads wake us through the queue at once; the 0.1 s cap only
            # bounds how late a SIGTERM (which merely sets a flag: a handler must
            # not touch the queue's lock) or the deadline is noticed.
            wait = 0.1 if self.timed_out else min(0.1, max(0.0, deadline - time.monotonic()))
            try:
                item = self.events.get(timeout=wait)
            except queue.Empty:
                item = None
            if not self.timed_out and time.monotonic() >= deadline:
                minutes = self.spec.config.timeout
                self.timed_out = f"timed out after {minutes} minute{'s' if minutes != 1 else ''}"
            reason = "stopped" if self.abort.is_set() else self.timed_out
            if reason:
                # Every pass, not once: a step thread that registered itself
                # just after the first kill must not slip through.
                for ctx in list(self.running.values()):
                    if not ctx.cancelled.is_set():
                        ctx.kill(reason)
            if item is not None:
                pending.discard(item[1])
        for j in started:
            s = self._step(i, j)
            if s["state"] == "Failed":
                why = s.get("message") or f"exit code {s.get('exit_code')}"
                return f"stage {i} step {j} failed: {why}"
        return ""

    def _step_thread(
        self, i: int, j: int, step: Step, runtime: StepRuntime, deadline: float
    ) -> None:
        try:
            self._run_step(i, j, step, runtime, deadline)
        except Exception as exc:
            traceback.print_exc()
            self.set_step(i, j, state="Failed", ended=time.time(), message=f"runner error: {exc}")
        finally:
            self.events.put((i, j))

    def _run_step(self, i: int, j: int, step: Step, runtime: StepRuntime, deadline: float) -> None:
        from devops.logs import LogKey, open_step_writer

        spec, opts = self.spec, self.options
        store = _store(opts.log_store_url)
        cap = _log_cap(spec)
        writer = open_step_writer(store, LogKey(spec.execution, i, j), mask=spec.mask, cap=cap)
        # The store keeps `cap` bytes and counts the rest as dropped; a step that
        # goes on printing far past that is killed, so it cannot run forever.
        log = _StepLog(writer, max(opts.log_limit, cap))
        ctx = StepContext(
            spec=spec,
            stage=i,
            step=j,
            config=step,
            workspace=self.workspace,
            run_dir=self.run_dir,
            data_dir=opts.data_dir,
            env={},
            log=log,
            deadline=deadline,
            runtime=runtime,
            options=opts,
        )
        log.ctx = ctx
        self.set_step(i, j, state="Building", started=time.time(), runtime=runtime.name)
        self.running[(i, j)] = ctx
        result = StepResult(1, "not run")
        try:
            if self.abort.is_set() or self.timed_out:
                result = StepResult(137, self.timed_out or "stopped")
            else:
                ctx.say(banner(step.kind, runtime))
                try:
                    ctx.env = step_env(spec, step)
                    # CICD_REGISTRY / CICD_IMAGE_REPO / CICD_IMAGE from the nearest
                    # earlier publish step; a step's own env wins.
                    for key, value in published_image_env(self.run_dir).items():
                        ctx.env.setdefault(key, value)
                    for hook in self.before:
                        try:
                            hook(ctx)
                        except StepStartError:
                            raise
                        except Exception as exc:  # a hook (cache) that raises fails the step
                            raise StepStartError(f"before the step: {exc}") from exc
                    kind = simulate if runtime.name == "dummy" else step_kind(step.kind)
                    result = kind(ctx)
                except StepStartError as exc:
                    ctx.say(str(exc))
                    result = StepResult(1, str(exc))
                for hook in self.after:
                    try:
                        hook(ctx, result)
                    except Exception as exc:  # a cache that cannot be saved fails the step
                        ctx.say(f"after the step: {exc}")
                        if result.exit_code == 0:
                            result = StepResult(1, f"after the step: {exc}")
        finally:
            self.running.pop((i, j), None)
            writer.close()
        if self.abort.is_set():
            state, message = "Aborted", "stopped"
        elif self.timed_out:
            state, message = "Failed", self.timed_out
        else:
            state = "Success" if result.exit_code == 0 else "Failed"
            message = result.message
        self.set_step(
            i,
            j,
            state=state,
            ended=time.time(),
            exit_code=result.exit_code,
            message=message,
            image_digest=result.image_digest,
            log_size=log.size,
        )


def warm_up() -> None:
    """Import what every run needs, once, in the process runners are forked from.

    A forked runner then starts with these modules loaded instead of importing
    them on every run (~100 ms on 2 cores). Failures are left for the runner
    to report on the step that needs the module.
    """
    import devops.logs.live
    import devops.logs.writer  # noqa: F401
    from devops.engines.local import steps
    from devops.engines.local.runtimes import RUNTIMES

    for kind in steps.KINDS:  # the step kinds' table (lazy, like RUNTIMES)
        try:
            steps.step_kind(kind)
        except Exception:
            pass
    for name in RUNTIMES.names(test=True):
        try:
            RUNTIMES.load(name)
        except ImportError:
            pass


def step_env(spec: RunSpec, step: Step) -> dict[str, str]:
    """CICD_* (spec.env), then the step's `env`, then `envFrom` from the project's secrets.

    Untrusted runs (pull requests, `spec.trusted` False) get no secrets: envFrom
    is dropped, whatever the spec holds. Otherwise a missing secret fails the step.
    """
    env = dict(spec.env)
    env.update(dict(step.env))
    for ref in step.env_from if spec.trusted else ():
        secret = spec.secrets.get(ref.source_name)
        if secret is None or ref.source_key not in secret:
            raise StepStartError(
                f"envFrom: secret {ref.source_name!r} has no key {ref.source_key!r}"
            )
        env[ref.name] = secret[ref.source_key]
    return env


_stores: dict[str, Any] = {}


def _store(url: str) -> Any:
    from devops.logs import log_store_from_url

    if url not in _stores:
        _stores[url] = log_store_from_url(url)
    return _stores[url]


def become_subreaper() -> None:
    """Orphans of steps (`setsid cmd &`) re-parent to the runner, so the final sweep finds them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def sweep_descendants() -> None:
    """SIGKILL and reap whatever a step left behind."""
    try:
        kids = psutil.Process().children(recursive=True)
    except psutil.Error:
        return
    for p in kids:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(kids, timeout=1)


def write_pidfile(run_dir: Path) -> None:
    pid = os.getpid()
    stat = st.proc_stat(pid)
    assert stat is not None
    st.write_json(run_dir / "runner.json", {"pid": pid, "sid": os.getsid(0), "start_time": stat[2]})


def serve(run_dir: Path, spec: RunSpec | None = None, options: LocalOptions | None = None) -> int:
    """The runner's body, in its own session. Returns the process exit code."""
    write_pidfile(run_dir)
    if spec is None or options is None:
        data = st.read_json(run_dir / "spec.json")
        if data is None:
            raise SystemExit(f"no spec.json in {run_dir}")
        spec = st.spec_from_json(data["spec"])
        options = LocalOptions.from_json(data["options"])
    become_subreaper()
    runner = Runner(spec, options, run_dir)

    def on_term(signum: int, frame: Any) -> None:
        runner.abort.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    final = runner.main()
    return 0 if final in ("Success", "Skipped") else 1


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m devops.engines.local.runner RUN_DIR", file=sys.stderr)
        return 2
    return serve(Path(argv[0]))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
