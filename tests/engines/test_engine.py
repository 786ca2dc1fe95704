"""LocalEngine with real runner processes: run/sync/stop/cleanup, clone, stages, when, crashes."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from devops.engines.local import state as st
from tests.engines.conftest import (
    config,
    git,
    log_of,
    make_engine,
    make_spec,
    script,
    step_of,
    wait_done,
)


def wait_step(engine, spec, handle, stage, step, state="Building", timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        report = engine.sync(spec, handle)
        if step_of(report, stage, step).state == state:
            return report
        time.sleep(0.02)
    raise AssertionError(f"step {stage}/{step} never reached {state}: {engine.sync(spec, handle)}")


def wait_file(path: Path, timeout: float = 5.0) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and path.read_text().endswith("\n"):
            return path.read_text()
        time.sleep(0.01)
    raise AssertionError(f"{path} never written")


def alive(pid: int) -> bool:
    s = st.proc_stat(pid)
    return s is not None and s[0] not in ("Z", "X")


def test_run_clones_the_exact_commit_and_runs_stages(repo, data_dir):
    first = repo.commits[0]
    repo.commit("version.txt", "two\n")  # the branch head moved on
    engine = make_engine(data_dir)
    cfg = config(
        [
            {
                "name": "Build",
                "steps": [script('cat version.txt; git rev-parse HEAD; echo "$CICD_GIT_COMMIT"')],
            },
            {"name": "Test", "steps": [script("echo second stage")]},
        ]
    )
    spec = make_spec(repo, cfg, commit=first)
    handle = engine.run(spec)
    report = wait_done(engine, spec, handle)
    assert report.state == "Success", report
    assert [s.state for s in report.steps] == ["Success"] * 3
    assert report.started and report.ended and report.node
    text = log_of(data_dir, spec, 1, 0)
    assert f"one\n{first}\n{first}\n" in text
    assert "second stage" in log_of(data_dir, spec, 2, 0)
    assert f"checked out {first}" in log_of(data_dir, spec, 0, 0)
    assert log_of(data_dir, spec, 0, 0).startswith(
        "[slipway] runtime: host (git clones on the host"
    )
    assert text.startswith(
        "[slipway] runtime: host (SLIPWAY_STEP_RUNTIME=host: no isolation); network: host (NOT"
    )
    assert step_of(report, 1, 0).log_size == len(text.encode())


def test_failed_step_fails_stage_and_later_stages_do_not_run(repo, data_dir):
    engine = make_engine(data_dir)
    cfg = config(
        [
            {"name": "Build", "steps": [script("exit 4"), script("sleep 0.2")]},
            {"name": "Deploy", "steps": [script("echo never")]},
        ]
    )
    spec = make_spec(repo, cfg)
    report = wait_done(engine, spec, engine.run(spec))
    assert report.state == "Failed"
    assert "stage 1 step 0 failed: exit code 4" in report.error
    assert (step_of(report, 1, 0).state, step_of(report, 1, 0).exit_code) == ("Failed", 4)
    assert step_of(report, 1, 1).state == "Success"  # its sibling finished normally
    assert step_of(report, 2, 0).state == "Waiting"  # never ran
    assert log_of(data_dir, spec, 2, 0) == ""


def test_steps_of_a_stage_run_concurrently(repo, data_dir):
    engine = make_engine(data_dir)
    cfg = config(
        [{"name": "Par", "steps": [script("sleep 0.6"), script("sleep 0.6"), script("sleep 0.6")]}]
    )
    spec = make_spec(repo, cfg)
    report = wait_done(engine, spec, engine.run(spec))
    assert report.state == "Success"
    steps = [step_of(report, 1, j) for j in range(3)]
    assert max(s.started for s in steps) < min(s.ended for s in steps)  # all three overlap: none waited for another


def test_when_skips_stages_and_steps(repo, data_dir):
    engine = make_engine(data_dir)
    cfg = config(
        [
            {
                "name": "OnlyRelease",
                "when": {"branch": {"include": ["release-*"]}},
                "steps": [script("echo no")],
            },
            {
                "name": "Mixed",
                "steps": [
                    script("echo yes"),
                    script("echo no", when={"event": {"include": ["tag"]}}),
                    script("echo no", when={"branch": {"exclude": ["ma*"]}}),
                ],
            },
        ]
    )
    spec = make_spec(repo, cfg)
    report = wait_done(engine, spec, engine.run(spec))
    assert report.state == "Success"
    assert [s.state for s in report.steps] == [
        "Success",
        "Skipped",
        "Success",
        "Skipped",
        "Skipped",
    ]


def test_top_level_branch_constraint_skips_the_run(repo, data_dir):
    engine = make_engine(data_dir)
    cfg = config([{"name": "B", "steps": [script("echo no")]}], branch={"include": ["release-*"]})
    spec = make_spec(repo, cfg)
    report = wait_done(engine, spec, engine.run(spec))
    assert report.state == "Skipped"
    assert "does not match" in report.error
    assert {s.state for s in report.steps} == {"Skipped"}


def test_timeout_kills_the_whole_tree(repo, data_dir):
    engine = make_engine(data_dir, timeout_unit=1.0)  # timeout: 1 -> one second
    cfg = config(
        [
            {
                "name": "Slow",
                "steps": [
                    script(
                        "sleep 300 & echo $! > child.pid; (setsid sleep 301 & echo $! > escaped.pid); sleep 302"
                    )
                ],
            },
            {"name": "After", "steps": [script("echo never")]},
        ],
        timeout=1,
    )
    spec = make_spec(repo, cfg)
    report = wait_done(engine, spec, engine.run(spec))
    # the sleeps are 300 s: only the pipeline deadline can have ended the run
    assert report.state == "Failed" and report.error == "timed out after 1 minute"
    assert (step_of(report, 1, 0).state, step_of(report, 1, 0).message) == (
        "Failed",
        "timed out after 1 minute",
    )
    assert step_of(report, 2, 0).state == "Waiting"
    ws = engine.workspace(spec.execution)
    for name in ("child.pid", "escaped.pid"):
        pid = int((ws / name).read_text())
        deadline = time.monotonic() + 3
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not alive(pid), name


def test_run_is_idempotent_per_execution(repo, data_dir):
    engine = make_engine(data_dir)
    cfg = config([{"name": "B", "steps": [script("echo once >> $CICD_COUNTER; sleep 0.3")]}])
    counter = data_dir / "counter"
    spec = make_spec(repo, cfg, env={"CICD_COUNTER": str(counter)})
    handles = []
    threads = [threading.Thread(target=lambda: handles.append(engine.run(spec))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({h["pid"] for h in handles}) == 1
    report = wait_done(engine, spec, handles[0])
    assert report.state == "Success"
    assert engine.run(spec)["pid"] == handles[0]["pid"]  # finished: still the same run
    assert counter.read_text() == "once\n"


def test_kill_9_of_the_runner_is_reported_with_the_reason(repo, data_dir):
    engine = make_engine(data_dir)
    cfg = config([{"name": "B", "steps": [script("echo $$ > step.pid; sleep 300")]}])
    spec = make_spec(repo, cfg)
    handle = engine.run(spec)
    wait_step(engine, spec, handle, 1, 0)
    step_pid = int(wait_file(engine.workspace(spec.execution) / "step.pid"))
    # The runner names itself in `ps` (forked from the controller without exec).
    cmdline = Path(f"/proc/{handle['pid']}/cmdline").read_bytes().replace(b"\0", b" ")
    assert cmdline.startswith(f"slipway-runner {spec.execution}".encode()), cmdline
    os.kill(handle["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 5
    while alive(handle["pid"]) and time.monotonic() < deadline:
        time.sleep(0.01)
    report = engine.sync(spec, handle)
    assert report.state == "Failed"
    assert report.error.startswith(f"runner process {handle['pid']} died")
    s = step_of(report, 1, 0)
    assert s.state == "Failed" and s.message == report.error
    deadline = time.monotonic() + 3
    while alive(step_pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(step_pid)  # the orphaned step was killed too
    assert engine.sync(spec, handle) == report  # stable afterwards


def test_stop_aborts_running_steps(repo, data_dir):
    engine = make_engine(data_dir)
    cfg = config(
        [
            {"name": "B", "steps": [script("echo $$ > step.pid; sleep 300")]},
            {"name": "C", "steps": [script("true")]},
        ]
    )
    spec = make_spec(repo, cfg)
    handle = engine.run(spec)
    wait_step(engine, spec, handle, 1, 0)
    step_pid = int(wait_file(engine.workspace(spec.execution) / "step.pid"))
    engine.stop(spec, handle)  # returns once the runner and its steps are gone (asserted below)
    report = engine.sync(spec, handle)
    assert report.state == "Aborted"
    assert step_of(report, 1, 0).state == "Aborted"
    assert step_of(report, 2, 0).state == "Waiting"
    assert not alive(handle["pid"])
    assert not alive(step_pid)
    engine.stop(spec, handle)  # idempotent
    assert engine.sync(spec, handle).state == "Aborted"


def test_cleanup_removes_workspace_and_secrets_keeps_logs(repo, data_dir):
    engine = make_engine(data_dir)
    spec = make_spec(repo, config([{"name": "B", "steps": [script("echo kept")]}]))
    handle = engine.run(spec)
    assert wait_done(engine, spec, handle).state == "Success"
    rd = Path(handle["run_dir"])
    assert (rd / "spec.json").exists()
    engine.cleanup(spec, handle)
    engine.cleanup(spec, handle)  # idempotent
    assert not engine.workspace(spec.execution).exists()
    assert not (rd / "spec.json").exists()
    assert "kept" in log_of(data_dir, spec, 1, 0)
    assert engine.sync(spec, handle).state == "Success"
    assert engine.run(spec)["pid"] == handle["pid"]  # still never runs twice


def test_exec_start_method(repo, data_dir):
    engine = make_engine(data_dir, start_method="exec")
    spec = make_spec(repo, config([{"name": "B", "steps": [script("echo from-exec")]}]))
    report = wait_done(engine, spec, engine.run(spec))
    assert report.state == "Success", (
        Path(engine.run_dir(spec.execution)) / "runner.log"
    ).read_text()
    assert "from-exec" in log_of(data_dir, spec, 1, 0)


def test_dummy_runtime_simulates_every_step(data_dir):
    from tests.engines.conftest import Repo

    engine = make_engine(data_dir, runtime="dummy")
    cfg = config(
        [
            {
                "name": "B",
                "steps": [
                    script("x", env={"SLIPWAY_DUMMY_OUTPUT": "simulated"}),
                    {
                        "type": {"kind": "publishImageConfig", "tag": "a/b:1"},
                        "env": {"SLIPWAY_DUMMY_EXIT": "2"},
                    },
                ],
            }
        ]
    )
    spec = make_spec(Repo(Path("/nonexistent"), ["0" * 40]), cfg)
    report = wait_done(engine, spec, engine.run(spec))
    assert report.state == "Failed"
    assert [s.state for s in report.steps] == ["Success", "Success", "Failed"]
    assert "simulated" in log_of(data_dir, spec, 1, 0)


def test_deploy_steps_without_target_fail_clearly(repo, data_dir):
    engine = make_engine(data_dir)
    cfg = config(
        [{"name": "D", "steps": [{"type": {"kind": "applyYamlConfig", "path": "./k.yaml"}}]}]
    )
    spec = make_spec(repo, cfg)
    report = wait_done(engine, spec, engine.run(spec))
    assert report.state == "Failed"
    assert "no deploy target is configured" in step_of(report, 1, 0).message


def test_forked_runner_keeps_nothing_of_the_controller(db, repo, data_dir):
    """Fork mode: the controller's database connection stays usable, its sockets are not held by the runner."""
    import socket

    from django.contrib.auth import get_user_model

    User = get_user_model()
    User.objects.create(username="before")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    inode = os.fstat(listener.fileno()).st_ino
    try:
        engine = make_engine(data_dir)
        spec = make_spec(
            repo, config([{"name": "B", "steps": [script("echo $$ > step.pid; sleep 30")]}])
        )
        handle = engine.run(spec)
        wait_step(engine, spec, handle, 1, 0)
        held = set()
        for pid in (handle["pid"], int(wait_file(engine.workspace(spec.execution) / "step.pid"))):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    held.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
                except OSError:
                    pass
        assert f"socket:[{inode}]" not in held
        engine.stop(spec, handle)
    finally:
        listener.close()
    User.objects.create(username="after")  # the connection still works
    assert User.objects.filter(username__in=["before", "after"]).count() == 2


def test_clone_borrows_objects_from_the_scm_mirror(repo, data_dir):
    import subprocess

    from devops.scm.git import mirror_path

    url = f"file://{repo.path}"
    mirror = mirror_path(data_dir, url)
    subprocess.run(["git", "clone", "-q", "--mirror", str(repo.path), str(mirror)], check=True)
    engine = make_engine(data_dir)
    spec = make_spec(
        repo, config([{"name": "B", "steps": [script("cat version.txt")]}]), repository_url=url
    )
    report = wait_done(engine, spec, engine.run(spec))
    assert report.state == "Success", log_of(data_dir, spec, 0, 0)
    assert f"objects from the local mirror {mirror.name}" in log_of(data_dir, spec, 0, 0)
    alternates = engine.workspace(spec.execution) / ".git" / "objects" / "info" / "alternates"
    assert str(mirror) in alternates.read_text()


def test_local_paths_and_urls():
    from devops.engines.local.steps.clone import is_local_path

    assert is_local_path("/srv/repo") and is_local_path("./repo") and is_local_path("repo")
    for url in (
        "file:///srv/repo",
        "https://h/r.git",
        "ssh://git@h/r.git",
        "git@github.com:o/r.git",
    ):
        assert not is_local_path(url)


def test_a_reused_session_id_is_never_killed():
    """kill_session must not touch a foreign session that got our old session id."""
    import subprocess

    other = subprocess.Popen(["sleep", "30"], start_new_session=True)  # its pid == its sid
    try:
        assert st.session_pids(other.pid) == []
        st.kill_session(other.pid)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_clone_of_a_commit_only_a_pull_request_ref_reaches(repo, data_dir):
    """A PR head is on no branch: the clone fetches exactly the ref and commit asked for."""
    git(repo.path, "checkout", "-q", "-b", "topic")
    head = repo.commit("pr.txt", "from the pull request\n")
    git(repo.path, "update-ref", "refs/pull/1/head", head)
    git(repo.path, "checkout", "-q", "main")
    git(repo.path, "branch", "-q", "-D", "topic")
    engine = make_engine(data_dir)
    cfg = config([{"name": "B", "steps": [script("cat pr.txt")]}])
    spec = make_spec(repo, cfg, name="p-pr-1", repository_url=f"file://{repo.path}", commit=head,
                     ref="refs/pull/1/head", branch="main", event="pull_request")
    report = wait_done(engine, spec, engine.run(spec))
    clone_log = log_of(data_dir, spec, 0, 0)
    assert report.state == "Success", clone_log
    assert "from the pull request" in log_of(data_dir, spec, 1, 0)
    # The plain clone lacks the commit; the fallback fetched the PR ref and checked it out.
    assert "reference is not a tree" in clone_log and f"checked out {head}" in clone_log, clone_log
