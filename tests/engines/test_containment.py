"""Point 7 (engine half): untrusted values, secrets, fork bombs and endless output are contained."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from devops.engines.base import GitAuth
from devops.engines.local.limits import hierarchies
from devops.engines.local.steps.clone import git_env
from tests.conftest import require_service, require_tool
from tests.engines.conftest import (
    config,
    log_of,
    make_engine,
    make_spec,
    script,
    step_of,
    wait_done,
)

HOSTILE = ["$(touch /tmp/pwned)", ";rm -rf ~", "`touch /tmp/pwned`", 'x"; touch /tmp/pwned; echo "']


@pytest.mark.parametrize("runtime", ["host", "sandbox"])
def test_hostile_branch_names_reach_steps_only_as_environment_values(
    repo, data_dir, tmp_path, runtime
):
    if runtime == "sandbox":
        require_tool("bwrap")
    pwned = Path("/tmp/pwned")
    pwned.unlink(missing_ok=True)
    home = tmp_path / "home"
    home.mkdir()
    (home / "keep").write_text("still here")
    engine = make_engine(data_dir, runtime=runtime)
    for n, branch in enumerate(HOSTILE):
        cfg = config(
            [
                {
                    "name": "B",
                    "steps": [
                        script('printenv CICD_GIT_BRANCH; echo "[$CICD_GIT_BRANCH]" > seen.txt')
                    ],
                }
            ]
        )
        # HOME points at a scratch dir: were `;rm -rf ~` ever spliced into shell text it would hit only that.
        spec = make_spec(
            repo,
            cfg,
            name=f"p-inj-{n}",
            branch=branch,
            env={"CICD_GIT_BRANCH": branch, "HOME": str(home)},
        )
        report = wait_done(engine, spec, engine.run(spec))
        assert report.state == "Success", (report, log_of(data_dir, spec, 1, 0))
        assert f"{branch}\n" in log_of(data_dir, spec, 1, 0)
        assert (engine.workspace(spec.execution) / "seen.txt").read_text() == f"[{branch}]\n"
    assert not pwned.exists()
    assert (home / "keep").read_text() == "still here"


def test_env_from_secrets_and_dropped_on_pull_requests(repo, data_dir):
    engine = make_engine(data_dir)
    step = script(
        'echo "token=[${TOKEN:-}] plain=$PLAIN"',
        env={"PLAIN": "p"},
        envFrom=[{"sourceName": "deploy", "sourceKey": "token", "targetKey": "TOKEN"}],
    )
    cfg = config([{"name": "B", "steps": [step]}])
    push = make_spec(repo, cfg, name="p-sec-1", secrets={"deploy": {"token": "s3cret"}})
    assert wait_done(engine, push, engine.run(push)).state == "Success"
    assert "token=[s3cret] plain=p" in log_of(data_dir, push, 1, 0)
    # The controller hands no secrets on pull_request events: the step runs without them.
    pr = make_spec(repo, cfg, name="p-sec-2", event="pull_request", secrets={})
    assert wait_done(engine, pr, engine.run(pr)).state == "Success"
    assert "token=[] plain=p" in log_of(data_dir, pr, 1, 0)
    # On a push a missing secret is an error, not silence.
    missing = make_spec(repo, cfg, name="p-sec-3", secrets={})
    report = wait_done(engine, missing, engine.run(missing))
    assert report.state == "Failed"
    assert "secret 'deploy' has no key 'token'" in step_of(report, 1, 0).message


def test_git_credentials_stay_out_of_argv(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    spec = make_spec(
        type("R", (), {"url": "https://git.example.com/a/b.git", "commits": ["0" * 40]})(),
        config([]),
        git_auth=GitAuth(token="tok-123", username="oauth2", ssh_private_key="KEY-DATA"),
    )
    env = git_env(spec, run_dir)
    key = run_dir / "ssh" / "id"
    assert key.read_text() == "KEY-DATA\n"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "KEY-DATA" not in env["GIT_SSH_COMMAND"] and str(key) in env["GIT_SSH_COMMAND"]
    assert env["GIT_CONFIG_KEY_0"] == "http.extraHeader"
    assert env["GIT_CONFIG_VALUE_0"].startswith("Authorization: Basic ")
    assert "tok-123" not in repr(
        env
    )  # only base64 inside a header, never the raw token in argv or env names


def test_clone_with_a_bad_repository_fails_with_a_reason(data_dir, tmp_path):
    from tests.engines.conftest import Repo

    engine = make_engine(data_dir)
    spec = make_spec(
        Repo(tmp_path / "missing", ["0" * 40]), config([{"name": "B", "steps": [script("true")]}])
    )
    report = wait_done(engine, spec, engine.run(spec))
    assert report.state == "Failed"
    assert "git clone of" in step_of(report, 0, 0).message
    assert step_of(report, 1, 0).state == "Waiting"


def _pids_cgroup() -> None:
    require_service(
        any("pids" in h.controllers for h in hierarchies()),
        "a writable pids cgroup (fork bomb containment)",
    )


@pytest.mark.slow
def test_fork_bomb_is_contained(repo, data_dir):
    _pids_cgroup()
    engine = make_engine(data_dir, pids_limit=48, timeout_unit=2.0)
    bomb = script("bomb() { bomb | bomb & }; bomb; sleep 300", cpuLimit="500m")
    cfg = config([{"name": "Bomb", "steps": [bomb]}], timeout=1)
    spec = make_spec(repo, cfg)
    t0 = time.monotonic()
    handle = engine.run(spec)
    peak = 0
    while engine.sync(spec, handle).state == "Building" and time.monotonic() - t0 < 20:  # sampling window only
        peak = max(peak, _cgroup_count(spec.execution))
        time.sleep(0.05)
    report = wait_done(engine, spec, handle)
    # the deadline (timeout_unit 2 s), not the 300 s sleep, ended it: the report says so
    assert report.state == "Failed" and report.error == "timed out after 1 minute"
    assert peak <= 48
    text = log_of(data_dir, spec, 1, 0)
    assert "pids.max=48" in text
    assert _cgroup_count(spec.execution) == 0
    from devops.engines.local import state as st

    end = time.monotonic() + 3
    while (
        st.session_pids(handle["sid"]) and time.monotonic() < end
    ):  # the runner exits just after its final state
        time.sleep(0.02)
    assert st.session_pids(handle["sid"]) == []


def _cgroup_count(execution: str) -> int:
    n = 0
    for h in hierarchies():
        if "pids" in h.controllers:
            for d in (h.base / "slipway").glob(f"*.{execution}.*"):
                try:
                    n += int((d / "pids.current").read_text())
                except OSError:
                    pass
    return n


def test_endless_printer_is_killed_at_the_log_limit(repo, data_dir):
    engine = make_engine(data_dir, log_limit=256 * 1024)
    cfg = config(
        [
            {"name": "Spam", "steps": [script("yes 'spam spam spam'")]},
            {"name": "After", "steps": [script("true")]},
        ]
    )
    # The project's log-size-cap (64 KiB) bounds what is stored; the engine's
    # log limit (256 KiB) bounds how long the step may go on printing.
    spec = make_spec(repo, cfg, settings={"log-size-cap": "64Ki"})
    report = wait_done(engine, spec, engine.run(spec))
    s = step_of(report, 1, 0)
    # `yes` never ends by itself: the log limit ended it (its message), not a clock
    assert report.state == "Failed" and s.state == "Failed"
    assert "printed more than 262144 bytes" in s.message
    text = log_of(data_dir, spec, 1, 0)
    kept, _, notices = text.partition("[slipway] log truncated")
    # The notice starts on a line of its own: a newline may come before it.
    kept = kept.removesuffix("\n") if len(kept.encode()) > 64 * 1024 else kept
    assert len(kept.encode()) <= 64 * 1024
    assert kept.startswith("[slipway] runtime:")
    assert "reached its cap of 65536 bytes" in notices
    dropped = int(notices.split("log truncated: ")[1].split(" bytes")[0])
    assert len(kept.encode()) + dropped == 256 * 1024  # nothing lost silently
    assert step_of(report, 2, 0).state == "Waiting"


def test_container_pipeline_end_to_end(repo, data_dir, busybox_image):
    engine = make_engine(data_dir, runtime="container", container_root=busybox_image.root)
    cfg = config(
        [
            {
                "name": "B",
                "steps": [
                    script('cat version.txt; echo "branch=$CICD_GIT_BRANCH"; ls /bin/busybox')
                ],
            }
        ]
    )
    spec = make_spec(repo, cfg)
    report = wait_done(engine, spec, engine.run(spec), timeout=30)
    text = log_of(data_dir, spec, 1, 0)
    assert report.state == "Success", text
    assert text.startswith(
        "[slipway] runtime: container (SLIPWAY_STEP_RUNTIME=container); network: outbound ("
    )
    assert "one\nbranch=main\n/bin/busybox\n" in text
    assert step_of(report, 1, 0).runtime == "container"


def test_secret_values_are_masked_in_step_logs(repo, data_dir):
    """The runner hands spec.mask to open_step_writer; the logs package masks (integration check)."""
    engine = make_engine(data_dir)
    step = script(
        'echo "value=$TOKEN"',
        envFrom=[{"sourceName": "deploy", "sourceKey": "token", "targetKey": "TOKEN"}],
    )
    spec = make_spec(
        repo,
        config([{"name": "B", "steps": [step]}]),
        name="p-mask-1",
        secrets={"deploy": {"token": "hunter2-secret"}},
        mask=("hunter2-secret",),
    )
    assert wait_done(engine, spec, engine.run(spec)).state == "Success"
    text = log_of(data_dir, spec, 1, 0)
    assert "value=" in text and "hunter2-secret" not in text


def test_container_step_stopped_midway_leaves_nothing(repo, data_dir, busybox_image):
    engine = make_engine(data_dir, runtime="container", container_root=busybox_image.root)
    cfg = config([{"name": "B", "steps": [script("echo started > started.txt; sleep 300")]}])
    spec = make_spec(repo, cfg, name="p-ctr-stop")
    handle = engine.run(spec)
    marker = engine.workspace(spec.execution) / "started.txt"
    end = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < end:
        time.sleep(0.02)
    assert marker.exists(), log_of(data_dir, spec, 1, 0)
    engine.stop(spec, handle)
    report = engine.sync(spec, handle)
    assert report.state == "Aborted" and step_of(report, 1, 0).state == "Aborted"
    engine.cleanup(spec, handle)
    names = busybox_image.buildah("containers", "--format", "{{.ContainerName}}").stdout
    assert "slipway-p-ctr-stop-" not in names
    from devops.engines.local import state as st

    assert st.session_pids(handle["sid"]) == []


def test_two_installs_on_one_machine_never_kill_each_others_steps(repo, tmp_path):
    """Step cgroups are machine-wide; execution names are unique per database only.

    Two Slipway installs (two data dirs) both run `p-test-1-<pid>`: stopping
    the first install's run must leave the second's step running (its cgroup
    was `slipway/p-test-1-<pid>.1-0` for both, and release_execution killed it).
    """
    from tests.engines.test_engine import alive, wait_file, wait_step

    _pids_cgroup()
    engines = [make_engine(tmp_path / name) for name in ("a", "b")]
    assert engines[0].options.cgroup_scope != engines[1].options.cgroup_scope
    spec = make_spec(repo, config([{"name": "B", "steps": [script("echo $$ > step.pid; sleep 300")]}]))
    handles = [e.run(spec) for e in engines]
    try:
        pids = []
        for e, h in zip(engines, handles, strict=True):
            wait_step(e, spec, h, 1, 0)
            pids.append(int(wait_file(e.workspace(spec.execution) / "step.pid")))
        engines[0].stop(spec, handles[0])
        engines[0].cleanup(spec, handles[0])
        assert not alive(pids[0])
        assert alive(pids[1]), "install A's stop killed install B's step"
        assert engines[1].sync(spec, handles[1]).state == "Building"
    finally:
        for e, h in zip(engines, handles, strict=True):
            e.stop(spec, h)
    assert not alive(pids[1])
