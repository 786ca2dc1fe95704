"""`dummy`: runs nothing; each step does what its environment says. For fast controller tests.

    SLIPWAY_DUMMY_EXIT=code            exit code of the step (default 0)
    SLIPWAY_DUMMY_SLEEP=seconds        how long the step "runs" (default 0); stop/timeout cut it short
    SLIPWAY_DUMMY_OUTPUT=text          written to the step's log
    SLIPWAY_DUMMY_START_ERROR=message  the step fails to start with this message

Under the dummy runtime every step kind is simulated, the Clone step included
(no git), so controller tests need no repository.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from devops.engines.local.errors import StepStartError
from devops.engines.local.runtimes.base import StepProcess, StepRuntime

if TYPE_CHECKING:
    from devops.engines.local.context import StepContext
    from devops.engines.local.limits import Enforcement


class DummyRuntime(StepRuntime):
    name = "dummy"

    def banner(self) -> str:
        # Nothing runs, so there is no network to describe.
        return f"runtime: {self.name}" + (f" ({self.reason})" if self.reason else "")

    def start_step(
        self, ctx: StepContext, argv: list[str], limits: Enforcement | None
    ) -> StepProcess:
        env = ctx.env
        if env.get("SLIPWAY_DUMMY_START_ERROR"):
            raise StepStartError(env["SLIPWAY_DUMMY_START_ERROR"])
        try:
            script = {
                "exit": int(env.get("SLIPWAY_DUMMY_EXIT", "0") or 0),
                "sleep": float(env.get("SLIPWAY_DUMMY_SLEEP", "0") or 0),
                "output": env.get("SLIPWAY_DUMMY_OUTPUT", ""),
            }
        except ValueError as exc:
            raise StepStartError(f"bad SLIPWAY_DUMMY_* value: {exc}") from None
        return StepProcess(None, extra={**script, "stop": threading.Event()})

    def tail_step(self, proc: StepProcess, sink: Callable[[bytes], None]) -> None:
        out = proc.extra["output"]
        if out:
            sink(out.encode() + (b"" if out.endswith("\n") else b"\n"))
        proc.extra["stop"].wait(proc.extra["sleep"])

    def wait_step(self, proc: StepProcess) -> int:
        return 137 if proc.killed else proc.extra["exit"]

    def destroy_step(self, proc: StepProcess, reason: str = "") -> None:
        with proc.lock:
            if reason and not proc.killed:
                proc.killed = reason
        if "stop" in proc.extra:
            proc.extra["stop"].set()
