"""Step kinds of the local engine: one module per kind, each `run(ctx) -> StepResult`.

`KINDS` is the dispatch table (step type name -> module, imported lazily),
read from the step kind records in devops/pipeline/kinds.py (`local`); the
banner comes from the same records.
`execute()` runs a command in the execution's StepRuntime with the step's
limits and streams its output into the step's log; `run_on_host()` does the
same for Slipway's own tools (git, buildah bud). Both obey `ctx.kill()`.
The caches around each step are the runner's hooks (`runner.BEFORE_STEP`).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING

from devops.engines.local.context import StepResult
from devops.engines.local.errors import StepStartError
from devops.engines.local.limits import cgroup_scope, enforce, resolve_limits, step_cgroup_name
from devops.engines.local.runtimes.base import StepProcess, StepRuntime, spawn
from devops.pipeline.kinds import STEP_KINDS

if TYPE_CHECKING:
    from devops.engines.local.context import StepContext

KINDS: dict[str, str] = {name: record.local for name, record in STEP_KINDS.items()}


def step_kind(kind: str) -> Callable[[StepContext], StepResult]:
    try:
        module = KINDS[kind]
    except KeyError:
        raise StepStartError(f"the local engine cannot run {kind} steps") from None
    return import_module(module).run  # type: ignore[no-any-return]


def simulate(ctx: StepContext) -> StepResult:
    """Every step kind under the dummy runtime: the step's SLIPWAY_DUMMY_* env decides."""
    return execute(ctx, [])


def banner(kind: str, runtime: StepRuntime) -> str:
    """The first line of every step log: where the step runs and why.

    The runner writes it before anything else (cache hooks included).
    """
    if runtime.name == "dummy" or kind not in STEP_KINDS:
        return runtime.banner()
    return STEP_KINDS[kind].banner(runtime.banner())


def step_limits_name(ctx: StepContext) -> str:
    """The step's cgroup name, scoped to this install (see limits.cgroup_scope)."""
    scope = ctx.options.cgroup_scope if ctx.options else cgroup_scope(ctx.run_dir.parent)
    return step_cgroup_name(scope, ctx.spec.execution, ctx.stage, ctx.step)


def execute(ctx: StepContext, argv: list[str], runtime: StepRuntime | None = None) -> StepResult:
    """Run `argv` as the step in `runtime` (default ctx.runtime) under the step's limits."""
    rt = runtime or ctx.runtime
    enforcement = None
    if rt.name != "dummy":
        try:
            limits = resolve_limits(
                ctx.config.cpu_limit,
                ctx.config.memory_limit,
                ctx.spec.settings,
                ctx.options.pids_limit if ctx.options else None,
            )
        except ValueError as exc:
            ctx.say(str(exc))
            return StepResult(1, str(exc))
        enforcement = enforce(limits, step_limits_name(ctx))
        ctx.say(enforcement.describe())
    try:
        try:
            proc = rt.start_step(ctx, argv, enforcement)
        except StepStartError as exc:
            ctx.say(str(exc))
            return StepResult(1, str(exc))
        return _follow(ctx, rt, proc)
    finally:
        if enforcement is not None:
            enforcement.release(wait=False)


def _follow(ctx: StepContext, rt: StepRuntime, proc: StepProcess) -> StepResult:
    ctx.on_kill(lambda reason: rt.destroy_step(proc, reason))
    try:
        rt.tail_step(proc, ctx.log.write)
        code = rt.wait_step(proc)
    except BaseException:
        rt.destroy_step(proc)
        raise
    if proc.container or proc.killed:
        rt.destroy_step(proc)  # container removal; or a kill that raced the exit
    if proc.killed:
        return StepResult(code or 137, proc.killed)
    return StepResult(code, "" if code == 0 else f"exit code {code}")


def run_on_host(
    ctx: StepContext, argv: list[str], *, env: dict[str, str], cwd: str | None = None
) -> int:
    """Run one of Slipway's own tools on the host for the step (no isolation, no limits).

    Output goes to the step's log; ctx.kill() ends it. Returns the exit code
    (128+N when killed by signal N); raises StepStartError when it cannot start.
    """
    try:
        popen = spawn(argv, env=env, cwd=cwd, limits=None)
    except OSError as exc:
        raise StepStartError(f"cannot start {argv[0]}: {exc.strerror}") from None
    rt = StepRuntime()
    proc = StepProcess(popen)
    result = _follow(ctx, rt, proc)
    if proc.killed:
        raise StepStartError(proc.killed)
    return result.exit_code
