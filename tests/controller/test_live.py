"""Controllers as real processes: two at once under a burst, kill -9 mid-run, SIGTERM.

Each module gets its own database (a SQLite file, or a fresh PostgreSQL
database when the suite runs on PostgreSQL) shared by `runcontroller`
processes, a trigger process and this test, which only reads it.
"""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from devops.controller import heartbeat

from .conftest import make_repo

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith("postgres")


class Live:
    def __init__(self, base: Path, db_url: str):
        self.base = base
        self.data = base / "data"
        self.db_url = db_url
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SLIPWAY_")},
            "DATABASE_URL": db_url, "SLIPWAY_DATA_DIR": str(self.data), "SLIPWAY_STEP_RUNTIME": "dummy",
            "SLIPWAY_TEST_RUNTIMES": "1",
            "SLIPWAY_LOG_LEVEL": "DEBUG", "PYTHONUNBUFFERED": "1", "DJANGO_SETTINGS_MODULE": "devops.settings",
        }
        self.procs: list[subprocess.Popen] = []

    def manage(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, timeout=timeout,
                              capture_output=True, text=True, check=False)

    def controller(self, *args: str, name: str) -> subprocess.Popen:
        err = open(self.base / f"{name}.log", "w")
        p = subprocess.Popen([sys.executable, "manage.py", "runcontroller", *args], cwd=ROOT, env=self.env,
                             stdout=err, stderr=subprocess.STDOUT)
        p.log = self.base / f"{name}.log"
        self.procs.append(p)
        return p

    def trigger(self, repo: Path, project: str, n: int, quota: int, sleep: float, during=None) -> list[str]:
        """n runs through do_run in one process, committed at once (a burst); returns their names.

        `during()` is called repeatedly while the trigger process runs.
        """
        script = f"""
from django.db import transaction
from devops.controller.cli import project_named, pipeline_for
from devops.controller.actions import do_run
p = project_named({project!r}); p.settings.filter(name="executor-quota").update(value="{quota}")
pl = pipeline_for(p, {str(repo)!r})
cfg = '''stages:
- name: Work
  steps:
  - runScriptConfig: {{image: x, shellScript: y}}
    env: {{SLIPWAY_DUMMY_SLEEP: "{sleep}", SLIPWAY_DUMMY_OUTPUT: "ran-once"}}
- name: More
  steps:
  - runScriptConfig: {{image: x, shellScript: y}}
    env: {{SLIPWAY_DUMMY_SLEEP: "{sleep}", SLIPWAY_DUMMY_OUTPUT: "ran-once"}}
'''
with transaction.atomic():
    names = [do_run(pl, config_text=cfg).name for _ in range({n})]
for name in names:
    print("EXECUTION", name)
"""
        p = subprocess.Popen([sys.executable, "manage.py", "shell", "-v", "0", "-c", script], cwd=ROOT,
                             env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while p.poll() is None:
            if during is not None:
                during()
            time.sleep(0.02)
        out, err = p.communicate()
        r = subprocess.CompletedProcess(p.args, p.returncode, out, err)
        assert r.returncode == 0, r.stderr
        return [line.split()[1] for line in r.stdout.splitlines() if line.startswith("EXECUTION ")]

    def rows(self, sql: str, *params) -> list[tuple]:
        if self.db_url.startswith("sqlite"):
            with sqlite3.connect(self.db_url.removeprefix("sqlite:///"), timeout=30) as c:
                return c.execute(sql, params).fetchall()
        import psycopg

        with psycopg.connect(self.db_url.replace("postgres://", "postgresql://"), autocommit=True) as c:
            return c.execute(sql.replace("?", "%s"), params).fetchall()

    def states(self, names: list[str]) -> dict[str, str]:
        marks = ",".join("?" * len(names))
        return dict(self.rows(f"SELECT name, execution_state FROM devops_pipelineexecution WHERE name IN ({marks})",
                              *names))

    def log_of(self, name: str, stage: int) -> bytes:
        path = self.data / "logs" / name / f"{stage}-0.log"
        return path.read_bytes() if path.exists() else b""

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()


@pytest.fixture(scope="module")
def live_db(tmp_path_factory):
    base = tmp_path_factory.mktemp("live")
    if ON_POSTGRES:
        import psycopg

        name = f"test_ctl_live_{uuid.uuid4().hex[:8]}"
        admin = "postgresql://postgres@127.0.0.1:5432/postgres"
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")
        url = f"postgres://postgres@127.0.0.1:5432/{name}"
    else:
        url = f"sqlite:///{base / 'live.sqlite3'}"
    live = Live(base, url)
    r = live.manage("migrate", "-v0", timeout=120)
    assert r.returncode == 0, r.stderr
    yield url
    if ON_POSTGRES:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def live(live_db, tmp_path):
    lv = Live(tmp_path, live_db)
    lv.data.mkdir()
    yield lv
    lv.stop_all()


def wait_for(predicate, timeout: float, every: float = 0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(every)
    return False


def test_burst_two_controller_processes_quota_and_no_double_start(live, tmp_path):
    repo = tmp_path / "repo"
    make_repo(repo, {"README": "x"})
    a = live.controller(name="a")
    b = live.controller(name="b")
    assert wait_for(lambda: len(heartbeat.running_controllers(live.data)) == 2, 20)
    peak = 0

    def sample() -> None:
        nonlocal peak
        admitted = live.rows(
            "SELECT COUNT(*) FROM devops_pipelineexecution WHERE "
            "(execution_state IN ('Waiting','Queueing','Building') AND engine <> '') OR abort_requested")[0][0]
        peak = max(peak, admitted)
        assert admitted <= 2, f"{admitted} admitted at once"

    names = live.trigger(repo, "burst", n=20, quota=2, sleep=0.1, during=sample)
    assert len(names) == 20

    def done() -> bool:
        sample()
        return set(live.states(names).values()) <= {"Success", "Failed", "Aborted"}

    assert wait_for(done, 90, every=0.02), live.states(names)
    assert set(live.states(names).values()) == {"Success"}
    assert peak == 2
    # SIGTERM: the current unit finishes, the process exits 0.
    for p in (a, b):
        p.send_signal(signal.SIGTERM)
    assert [p.wait(timeout=15) for p in (a, b)] == [0, 0]
    logs = a.log.read_text() + b.log.read_text()
    for name in names:
        assert logs.count(f"handing {name} to the engine") == 1, name
        assert live.log_of(name, 1).count(b"ran-once") == 1
        assert live.log_of(name, 2).count(b"ran-once") == 1
    # Both controllers did some of the work.
    assert "handing" in a.log.read_text() and "handing" in b.log.read_text()
    assert not heartbeat.running_controllers(live.data)


def test_kill_9_controller_mid_run_then_restart_completes_everything(live, tmp_path):
    repo = tmp_path / "repo"
    make_repo(repo, {"README": "x"})
    first = live.controller(name="first")
    names = live.trigger(repo, "crash", n=3, quota=2, sleep=0.7)
    assert wait_for(lambda: list(live.states(names).values()).count("Building") == 2, 30), live.states(names)
    handles_before = dict(live.rows("SELECT name, engine_handle FROM devops_pipelineexecution WHERE "
                                    "execution_state = 'Building'"))
    first.send_signal(signal.SIGKILL)
    first.wait()
    time.sleep(0.3)
    # The runners live on in their own sessions; a new controller adopts them.
    second = live.controller("--until-idle", name="second")
    assert second.wait(timeout=60) == 0, second.log.read_text()
    assert set(live.states(names).values()) == {"Success"}, live.states(names)
    handles_after = dict(live.rows("SELECT name, engine_handle FROM devops_pipelineexecution"))
    for name, handle in handles_before.items():
        assert handles_after[name] == handle  # adopted, not restarted
    for name in names:
        assert live.log_of(name, 1).count(b"ran-once") == 1, name
        assert live.log_of(name, 2).count(b"ran-once") == 1, name
    assert "finished" in second.log.read_text()


def test_pipeline_run_follows_a_running_controller(live, tmp_path):
    repo = tmp_path / "repo"
    make_repo(repo, {".devops.yml": "stages:\n- name: W\n  steps:\n  - runScriptConfig: {image: x, shellScript: y}\n"
                                    "    env: {SLIPWAY_DUMMY_OUTPUT: followed}\n"})
    ctl = live.controller(name="ctl")
    assert wait_for(lambda: len(heartbeat.running_controllers(live.data)) == 1, 20)
    r = live.manage("pipeline", "run", str(repo))
    assert r.returncode == 0, r.stderr
    assert "[1.0 W] followed" in r.stdout
    name = r.stdout.strip().splitlines()[-1].split(":")[0]
    assert "admitted" not in r.stderr                     # no inline controller
    assert f"handing {name} to the engine" in ctl.log.read_text()
