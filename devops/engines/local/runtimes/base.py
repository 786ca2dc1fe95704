"""The step runtime contract (woodpecker's backend shape, DESIGN §5).

A runtime runs the commands of one step somewhere: in a container, in a bwrap
sandbox, as a plain host process, or nowhere (dummy). One instance serves one
execution (one runner process). Call order:

    setup(run)                         once, before the first step; may raise RuntimeUnavailable
    start_step(ctx, argv, limits)      -> StepProcess; raises StepStartError when the step
                                       cannot start (image missing, ...). Never blocks on the step.
    tail_step(proc, sink)              pumps the step's merged stdout/stderr into `sink` in
                                       chunks until the step and everything it started ended.
                                       Never buffers more than one chunk (64 KiB).
    wait_step(proc) -> exit code       after tail_step; 128+N when killed by signal N
    destroy_step(proc)                 kills the step's whole process tree and frees its
                                       resources (container, cgroup). Idempotent; may be called
                                       from another thread while tail_step runs (timeout, abort).
    destroy()                          once at the end; idempotent

Thread-safety: steps of a stage run in parallel threads; start/tail/wait of
one step happen in that step's thread, destroy_step may come from any thread.
Environment values reach the step through the process environment, or (the
container runtime) a 0600 file read inside the container and deleted at once;
never through a command line or shell text.

Network: runtimes with `isolates_network` (container, sandbox) put every step
in a network namespace of its own (runtimes/network.py), chosen by the
project's `step-network` setting, read in setup(); the first log line
(`banner()`) says which network the step got.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psutil

from devops.engines.local.errors import RuntimeUnavailable
from devops.engines.local.limits import Enforcement
from devops.engines.local.runtimes import network

if TYPE_CHECKING:
    from devops.engines.local.context import StepContext

CHUNK = 64 * 1024

# A runner-wide PATH for steps on the host; the controller's own environment
# (DATABASE_URL, secret keys) never reaches a step.
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class StepProcess:
    """A started step. `popen` is None for the dummy runtime."""

    popen: subprocess.Popen | None
    enforcement: Enforcement | None = None
    container: str = ""
    killed: str = ""  # why destroy_step killed it ("" = not killed)
    extra: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def handle(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.popen:
            out["pid"] = self.popen.pid
        if self.container:
            out["container"] = self.container
        return out


class StepRuntime:
    """Base class of the runtimes; see the module docstring for the contract."""

    name = "base"
    uses_image = False
    # True: each step gets its own network namespace (`network_mode`).
    isolates_network = False

    def __init__(self, reason: str = "") -> None:
        # Why this runtime was chosen; the first line of every step log says it.
        self.reason = reason
        self.network_mode = "outbound"

    def setup(self, run: Any) -> None:
        if self.isolates_network:
            self._setup_network(run)

    def _setup_network(self, run: Any) -> None:
        """The execution's `step-network` (run.spec.settings); RuntimeUnavailable when unusable."""
        spec = getattr(run, "spec", None)
        try:
            self.network_mode = network.network_mode(spec.settings if spec is not None else {})
        except ValueError as exc:
            raise RuntimeUnavailable(str(exc)) from None
        network.check_tools(self.network_mode)

    def banner(self) -> str:
        head = f"runtime: {self.name}" + (f" ({self.reason})" if self.reason else "")
        return f"{head}; {self.network_banner()}"

    def network_banner(self) -> str:
        if self.isolates_network:
            return network.describe(self.network_mode)
        return "network: host (not isolated: the step reaches every service of this machine)"

    def open_network(self, ctx: StepContext) -> network.StepNetwork | None:
        """The step's own network namespace (None when this runtime does not isolate it)."""
        if not self.isolates_network:
            return None
        from devops.registry.tokens import split_local_registry

        # The bare host:port of CICD_LOCAL_REGISTRY (`127.0.0.1:5000/p-abcde`), from the
        # controller's RunSpec: a step's own env never chooses what its network relays.
        registry, _ = split_local_registry(ctx.spec.env.get("CICD_LOCAL_REGISTRY", ""))
        return network.StepNetwork.open(self.network_mode, registry)

    def start_step(
        self, ctx: StepContext, argv: list[str], limits: Enforcement | None
    ) -> StepProcess:
        raise NotImplementedError

    def tail_step(self, proc: StepProcess, sink: Callable[[bytes], None]) -> None:
        pump(proc, sink, on_exit=lambda: self._after_exit(proc))

    def wait_step(self, proc: StepProcess) -> int:
        assert proc.popen is not None
        code = exit_code(proc.popen.wait())
        release(proc)
        return code

    def destroy_step(self, proc: StepProcess, reason: str = "") -> None:
        with proc.lock:
            if reason and not proc.killed:
                proc.killed = reason
        kill_tree(proc)
        release(proc)

    def destroy(self) -> None:
        return None

    def _after_exit(self, proc: StepProcess) -> None:
        """The step's main process ended: whatever it left running in the background dies too."""
        kill_tree(proc, wait=False)
        release(proc)


def release(proc: StepProcess) -> None:
    """Free what a step held besides its processes: its network, its env file. Idempotent."""
    with proc.lock:
        net = proc.extra.pop("network", None)
        env_dir = proc.extra.pop("env_dir", None)
    if net is not None:
        net.close()
    if env_dir is not None:
        shutil.rmtree(env_dir, ignore_errors=True)


def exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def spawn(
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: str | None,
    limits: Enforcement | None,
    net: network.StepNetwork | None = None,
) -> subprocess.Popen:
    """Start a step process: own process group, stdout+stderr merged into one pipe, no stdin.

    With `limits`, the process starts inside the step's cgroups (see
    Enforcement.spawning) and under its rlimits; with `net`, inside that
    network namespace (it alone inherits the namespace's fd).
    """
    pass_fds: tuple[int, ...] = ()
    if net is not None:
        argv, pass_fds = net.enter(argv), (net.fd,)
    if limits is None:
        return _popen(argv, env=env, cwd=cwd, pass_fds=pass_fds)
    with limits.spawning() as wrap:
        return _popen(wrap(argv), env=env, cwd=cwd, pass_fds=pass_fds)


def _popen(
    argv: list[str], *, env: dict[str, str], cwd: str | None, pass_fds: tuple[int, ...] = ()
) -> subprocess.Popen:
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=cwd,
        close_fds=True,
        pass_fds=pass_fds,
        process_group=0,
    )


def pump(proc: StepProcess, sink: Callable[[bytes], None], on_exit: Callable[[], None]) -> None:
    """Copy the step's output to `sink` until EOF; call `on_exit` as soon as the main process ends.

    Waiting on a pidfd next to the pipe means a background child that keeps the
    pipe open (`sleep 100 &`) cannot hold the step open after its main process
    ended: `on_exit` kills it, the pipe closes, the pump returns.
    """
    popen = proc.popen
    assert popen is not None and popen.stdout is not None
    fd = popen.stdout.fileno()
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ, "out")
    pidfd = None
    try:
        pidfd = os.pidfd_open(popen.pid)
        sel.register(pidfd, selectors.EVENT_READ, "exit")
    except (AttributeError, OSError):
        pidfd = None
    exited = False
    try:
        while True:
            events = sel.select(timeout=None if pidfd is not None or exited else 0.2)
            if not events and pidfd is None and not exited and popen.poll() is not None:
                exited = True
                on_exit()
            for key, _ in events:
                if key.data == "exit":
                    sel.unregister(pidfd)
                    exited = True
                    on_exit()
                    continue
                data = os.read(fd, CHUNK)
                if not data:
                    return
                sink(data)
    finally:
        sel.close()
        if pidfd is not None:
            os.close(pidfd)
        popen.stdout.close()


def kill_tree(proc: StepProcess, wait: bool = True) -> None:
    """SIGKILL the step's process group, every descendant and its cgroups. Idempotent.

    wait=False is the step's normal end (its main process exited): signal
    what is left once, without waiting for the cgroup to drain.
    """
    popen = proc.popen
    if popen is None:
        return
    victims: list[psutil.Process] = []
    leader = popen.returncode is None and _running(popen.pid)
    if leader and not (proc.enforcement and proc.enforcement.cgroups):
        # Without a cgroup, the live leader's descendants are found by ancestry
        # (once the leader is gone they are re-parented to the runner, the
        # subreaper, and the runner's final sweep gets them).
        try:
            victims = psutil.Process(popen.pid).children(recursive=True)
        except psutil.Error:
            pass
    if popen.returncode is None:
        # Only while the leader is unreaped: afterwards its pid (= pgid) may be reused.
        try:
            os.killpg(popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for child in victims:
        try:
            child.kill()
        except psutil.Error:
            pass
    if popen.returncode is None:
        try:
            popen.kill()
        except ProcessLookupError:
            pass
    if proc.enforcement is not None:
        proc.enforcement.kill_all(wait)


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except OSError:
        return False


class UnavailableRuntime(StepRuntime):
    """Stands in for a runtime whose setup() failed: every step fails to start with the reason."""

    def __init__(self, runtime: StepRuntime, error: str) -> None:
        super().__init__(runtime.reason)
        self.name = runtime.name
        self.uses_image = runtime.uses_image
        self.isolates_network = runtime.isolates_network
        self.network_mode = runtime.network_mode
        self.error = error

    def start_step(
        self, ctx: StepContext, argv: list[str], limits: Enforcement | None
    ) -> StepProcess:
        from devops.engines.local.errors import StepStartError

        raise StepStartError(self.error)
