"""`./slipway bench jenkins`: controller cost per sync pass on the Jenkins engine, against the fake Jenkins.

A pass is what `tick_sync` does for the Building executions: `engine.sync()`
once for each. Scenarios (each with 1,000 finished executions whose jobs and
builds stay in Jenkins):
  * 10 active, 100 active: every active run has one running step that printed
    a new line since the last pass (so each pass copies log bytes).
Figures: HTTP requests per pass (counted by the fake), ms per pass (median of
the passes), and the ratio to a baseline measured in the same run: one plain
authenticated GET per active run over python-jenkins' session (the least any
poller pays). No Jenkins can run here: the server is tests/engines/jenkins/fake.py.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

PASSES = 10
FINISHED = 1000
PIPELINE = """\
stages:
- name: Test
  steps:
  - runScriptConfig:
      image: golang:1.22
      shellScript: go test ./...
"""


def _engine(fake, root: Path):
    from devops.engines.jenkins.engine import JenkinsEngine
    from devops.engines.jenkins.options import JenkinsOptions
    from devops.logs.filestore import FileLogStore

    options = JenkinsOptions(url=fake.url, user=fake.user, token=fake.token, log_store_url=f"file://{root}")
    return JenkinsEngine(options, store=FileLogStore(root))


def _start(engine, fake, name: str):
    from devops.engines.jenkins.jenkinsfile import job_name
    from tests.engines.jenkins.conftest import make_spec

    spec = make_spec(PIPELINE, execution=name)
    handle = engine.run(spec)
    job = job_name(name)
    fake.start(job)
    fake.set_step(job, "step-0-0", "SUCCESS")
    fake.set_step(job, "step-1-0", "IN_PROGRESS")
    engine.sync(spec, handle)  # resolve the queue item to the build number once, as the first pass does
    return spec, handle, job


def _finish(engine, fake, spec, handle, job) -> None:
    fake.set_step(job, "step-1-0", "SUCCESS")
    fake.finish(job, "SUCCESS", node="node-a")
    assert engine.sync(spec, handle).state == "Success"


def _measure(engine, fake, runs) -> tuple[float, float]:
    """(requests per pass, median ms per pass) of PASSES sync passes over `runs`."""
    times, counts = [], []
    for n in range(PASSES):
        for _spec, _handle, job in runs:
            fake.append_log(job, "step-1-0", f"pass {n}: ok\n".encode())
        before = len(fake.requests)
        t0 = time.perf_counter()
        for spec, handle, _job in runs:
            assert engine.sync(spec, handle).state == "Building"
        times.append((time.perf_counter() - t0) * 1000)
        counts.append(len(fake.requests) - before)
    return statistics.mean(counts), statistics.median(times)


def _baseline(engine, fake, active: int) -> tuple[float, float]:
    import requests

    server = engine.client.server
    times, counts = [], []
    for _ in range(PASSES):
        before = len(fake.requests)
        t0 = time.perf_counter()
        for _i in range(active):
            server.jenkins_request(requests.Request("GET", f"{fake.url}/me/api/json"))
        times.append((time.perf_counter() - t0) * 1000)
        counts.append(len(fake.requests) - before)
    return statistics.mean(counts), statistics.median(times)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "devops.settings")
    import django

    django.setup()
    import logging

    logging.getLogger("devops").setLevel(logging.ERROR)
    from tests.engines.jenkins.fake import Build, FakeJenkins, Job

    with tempfile.TemporaryDirectory() as tmp, FakeJenkins() as fake:
        engine = _engine(fake, Path(tmp))
        t0 = time.monotonic()
        # Two finished through the engine (run, sync to the end); the other finished runs are
        # put straight into the fake's state: the same jobs and builds, without 1,000 x the setup.
        done = [_start(engine, fake, f"p-bench-done-{k}") for k in range(2)]
        for run in done:
            _finish(engine, fake, *run)
        template = fake.jobs[done[0][2]]
        for k in range(2, FINISHED):
            name = f"slipway-p-bench-done-{k}"
            fake.jobs[name] = Job(name, template.config, builds=[Build(1, dict(template.builds[0].steps),
                                                                       status="SUCCESS")])
        print(f"setup: {FINISHED} finished executions in {time.monotonic() - t0:.1f}s "
              f"({len(fake.jobs)} jobs in the fake Jenkins)")
        rows = []
        for active in (10, 100):
            runs = [_start(engine, fake, f"p-bench-{active}-{k}") for k in range(active)]
            b_req, b_ms = _baseline(engine, fake, active)
            req, ms = _measure(engine, fake, runs)
            rows.append((active, req, ms, b_req, b_ms))
            for spec, handle, job in runs:
                _finish(engine, fake, spec, handle, job)
        print(f"\n{'active':>6} {'finished':>8} {'req/pass':>9} {'ms/pass':>8} {'req/run':>8} "
              f"{'ms/run':>7} {'baseline ms':>11} {'x baseline':>10}")
        for active, req, ms, _b_req, b_ms in rows:
            print(f"{active:>6} {FINISHED:>8} {req:>9.0f} {ms:>8.1f} {req / active:>8.1f} {ms / active:>7.2f} "
                  f"{b_ms:>11.1f} {ms / b_ms:>10.2f}")
        (a10, r10, m10, *_), (a100, r100, m100, *_) = rows
        print(f"\n100 vs 10 active: requests x{r100 / r10:.1f}, time x{m100 / m10:.1f} "
              f"(active runs x{a100 / a10:.0f}; the {FINISHED} finished runs cost no request)")


if __name__ == "__main__":
    main()
