"""A small in-process engine for controller tests (the local engine's dummy runtime is the real thing).

It follows the PipelineEngine contract: run() is idempotent per execution
name (a second call returns the first handle and starts nothing), sync()
reports a run that finishes `duration` seconds after it started, every
step Success unless the step's env has EXIT=<code>.
"""
from __future__ import annotations

import threading
import time
from collections import Counter

from devops.engines.base import PipelineEngine, RunReport, RunSpec, StepReport


class FakeEngine(PipelineEngine):
    name = "fake"

    def __init__(self, duration: float = 0.0):
        self.duration = duration
        self.lock = threading.Lock()
        self.starts: Counter[str] = Counter()   # real starts (must stay <= 1 per execution)
        self.run_calls: Counter[str] = Counter()
        self.stopped: Counter[str] = Counter()
        self.cleaned: Counter[str] = Counter()
        self.deployed: list[str] = []
        self.runs: dict[str, float] = {}        # execution -> start time
        self.finished: dict[str, str] = {}      # forced final states
        self.ready = True

    def deploy(self, project) -> None:
        self.deployed.append(project.project_id)

    def pre_check(self, spec: RunSpec) -> bool:
        return self.ready

    def run(self, spec: RunSpec) -> dict:
        with self.lock:
            self.run_calls[spec.execution] += 1
            if spec.execution not in self.runs:
                self.starts[spec.execution] += 1
                self.runs[spec.execution] = time.time()
            return {"fake": spec.execution}

    def running(self) -> list[str]:
        with self.lock:
            return [n for n in self.runs if n not in self.finished and n not in self.stopped
                    and time.time() - self.runs[n] < self.duration]

    def stop(self, spec: RunSpec, handle: dict, *, wait: bool = True) -> bool:
        with self.lock:
            self.stopped[spec.execution] += 1
        return True

    def finish(self, name: str, state: str) -> None:
        with self.lock:
            self.finished[name] = state

    def sync(self, spec: RunSpec, handle: dict) -> RunReport:
        started = self.runs[spec.execution]
        forced = self.finished.get(spec.execution)
        done = forced is not None or time.time() - started >= self.duration
        steps = []
        final = "Success"
        for i, stage in enumerate(spec.config.stages):
            for j, step in enumerate(stage.steps):
                code = int(dict(step.env).get("EXIT", "0"))
                if done:
                    state = "Success" if code == 0 else "Failed"
                    if code:
                        final = "Failed"
                else:
                    state = "Building"
                steps.append(StepReport(stage=i, step=j, state=state, started=started,
                                        ended=started + 0.01 if done else None,
                                        exit_code=code if done else None, runtime="fake"))
        if forced:
            final = forced
        return RunReport(state=final if done else "Building", steps=tuple(steps), started=started,
                         ended=time.time() if done else None, node="fake-node")

    def cleanup(self, spec: RunSpec, handle: dict) -> None:
        with self.lock:
            self.cleaned[spec.execution] += 1
