"""Each step runtime for real: host, sandbox (bwrap), container (buildah), dummy; and limits."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from devops.engines.local.context import Mount, StepContext
from devops.engines.local.limits import hierarchies
from devops.engines.local.options import LocalOptions
from devops.engines.local.runtimes import select_runtime
from devops.engines.local.runtimes.container import ContainerRuntime
from devops.engines.local.runtimes.dummy import DummyRuntime
from devops.engines.local.runtimes.host import HostRuntime
from devops.engines.local.runtimes.sandbox import SandboxRuntime
from devops.engines.local.steps import banner, execute, step_limits_name
from devops.engines.local.steps.run_script import run as _run_script
from tests.conftest import require_service, require_tool
from tests.engines.conftest import Repo, config, make_spec, script


class MemLog:
    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    @property
    def text(self) -> str:
        return self.data.decode(errors="replace")


def run_script(ctx: StepContext):
    """As the runner does: the banner line first, then the step kind."""
    ctx.say(banner("runScriptConfig", ctx.runtime))
    return _run_script(ctx)


# make_spec() adds this process's id (step cgroups are machine-wide).
RT_NAME = f"p-rt-1-{os.getpid()}"


def make_ctx(
    tmp_path: Path,
    runtime,
    sh: str = "true",
    env: dict | None = None,
    image: str = "localhost/busybox:latest",
    mounts: list[Mount] | None = None,
    **step,
) -> StepContext:
    data = tmp_path / "data"
    ws = data / "workspaces" / RT_NAME
    ws.mkdir(parents=True, exist_ok=True)
    cfg = config([{"name": "Build", "steps": [script(sh, image=image, **step)]}])
    spec = make_spec(Repo(tmp_path, ["0" * 40]), cfg, name="p-rt-1")
    assert spec.execution == RT_NAME
    opts = LocalOptions(
        data_dir=data,
        workspace_dir=data / "workspaces",
        log_store_url="file:///nonexistent",
        pids_limit=256,
        container_root=getattr(runtime, "root", None),
    )
    return StepContext(
        spec=spec,
        stage=1,
        step=0,
        config=cfg.step(1, 0),
        workspace=ws,
        run_dir=data / "runs" / RT_NAME,
        data_dir=data,
        env=dict(env or {}),
        log=MemLog(),
        deadline=time.monotonic() + 60,
        mounts=list(mounts or []),
        runtime=runtime,
        options=opts,
    )


def test_host_runs_plain_process_in_workspace(tmp_path):
    ctx = make_ctx(
        tmp_path,
        HostRuntime("test"),
        "pwd; printenv GREETING; echo out >&2; exit 7",
        env={"GREETING": "hi there"},
    )
    result = run_script(ctx)
    assert result.exit_code == 7 and result.message == "exit code 7"
    text = ctx.log.text
    assert text.startswith("[slipway] runtime: host (test); network: host (NOT isolated")
    assert "image localhost/busybox:latest is not used" in text
    assert f"{ctx.workspace}\nhi there\nout\n" in text


def test_host_kills_background_children_when_the_step_ends(tmp_path):
    """A step's main process exits: what it left running dies, and the step does not hang on the pipe."""
    # The child never ends by itself: if the step waited for it (or for the pipe it
    # holds), run_script would not return at all. Returning is the event.
    ctx = make_ctx(tmp_path, HostRuntime(), "sleep 100000 & echo $! > bg.pid; echo started")
    assert run_script(ctx).exit_code == 0
    pid = int((ctx.workspace / "bg.pid").read_text())
    _assert_gone(pid)


def _assert_gone(pid: int, within: float = 3.0) -> None:
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} still alive")


def test_sandbox_isolates_the_step(tmp_path):
    require_tool("bwrap")
    rt = SandboxRuntime("test")
    rt.setup(None)
    secret = tmp_path / "data" / "runs" / "other" / "spec.json"
    secret.parent.mkdir(parents=True)
    secret.write_text("token")
    other_ws = tmp_path / "data" / "workspaces" / "p-other-1"
    other_ws.mkdir(parents=True)
    host_tmp = Path("/tmp") / f"slipway-host-{os.getpid()}"
    host_tmp.write_text("x")
    cache = tmp_path / "cache"
    try:
        ctx = make_ctx(
            tmp_path,
            rt,
            f"echo ws > written; ls {secret} 2>&1 || echo no-data; ls {other_ws} 2>&1 || echo no-other; "
            f"ls {host_tmp} 2>&1 || echo no-host-tmp; touch /usr/x 2>&1 || echo usr-ro; echo c > /cache/f; "
            'echo pids=$(ls /proc | grep -c "^[0-9]")',
            mounts=[Mount(cache, "/cache")],
        )
        assert run_script(ctx).exit_code == 0, ctx.log.text
    finally:
        host_tmp.unlink()
    text = ctx.log.text
    assert text.startswith("[slipway] runtime: sandbox (test); network: outbound (slirp4netns")
    assert (ctx.workspace / "written").read_text() == "ws\n"
    for marker in ("no-data", "no-other", "no-host-tmp", "usr-ro"):
        assert marker in text, text
    assert (cache / "f").read_text() == "c\n"
    pids = int(text.split("pids=")[1].split()[0])
    assert pids < 10  # own pid namespace: the host's processes are invisible


def test_container_runs_in_the_image_with_workspace_and_env(tmp_path, busybox_image):
    rt = ContainerRuntime("test", root=busybox_image.root)
    rt.setup(None)
    cache = tmp_path / "cache"
    ctx = make_ctx(
        tmp_path,
        rt,
        'cat /etc/passwd; pwd; echo "v=$VALUE"; echo made > made.txt; echo c > /cache/f; ls /usr 2>&1 | head -1',
        env={"VALUE": "a b $(touch /tmp/pwned-ctr)"},
        mounts=[Mount(cache, "/cache")],
    )
    result = run_script(ctx)
    text = ctx.log.text
    assert result.exit_code == 0, text
    assert text.startswith("[slipway] runtime: container (test); network: outbound (slirp4netns")
    assert "root:x:0:0:root:/root:/bin/sh" in text  # the image's /etc/passwd, not the host's
    assert str(ctx.workspace) in text
    assert "v=a b $(touch /tmp/pwned-ctr)" in text
    assert (ctx.workspace / "made.txt").read_text() == "made\n"
    assert (cache / "f").read_text() == "c\n"
    # the working container is gone after the step
    assert (
        f"slipway-{RT_NAME}-1-0"
        not in busybox_image.buildah("containers", "--format", "{{.ContainerName}}").stdout
    )


def test_container_image_that_cannot_be_pulled_fails_the_step(tmp_path, busybox_image):
    rt = ContainerRuntime("test", root=busybox_image.root)
    rt.setup(None)
    ctx = make_ctx(tmp_path, rt, "echo must-not-run", image="registry.invalid/nope/nothing:1")
    result = run_script(ctx)
    assert result.exit_code != 0
    assert "image registry.invalid/nope/nothing:1 could not be pulled" in result.message
    assert "registry.invalid" in result.message.split("pulled:", 1)[1]  # the registry's own error
    assert "must-not-run" not in ctx.log.text


def test_dummy_is_scriptable(tmp_path):
    rt = DummyRuntime("test")
    ctx = make_ctx(
        tmp_path,
        rt,
        env={
            "SLIPWAY_DUMMY_EXIT": "3",
            "SLIPWAY_DUMMY_OUTPUT": "hello",
            "SLIPWAY_DUMMY_SLEEP": "0.2",
        },
    )
    t0 = time.monotonic()
    result = execute(ctx, [])
    assert result.exit_code == 3 and time.monotonic() - t0 >= 0.2
    assert ctx.log.text == "hello\n"
    ctx = make_ctx(tmp_path, rt, env={"SLIPWAY_DUMMY_START_ERROR": "no such node"})
    result = execute(ctx, [])
    assert (result.exit_code, result.message) == (1, "no such node")
    ctx = make_ctx(tmp_path, rt, env={"SLIPWAY_DUMMY_SLEEP": "30"})
    import threading

    threading.Timer(0.1, ctx.kill, args=("timed out after 1 minute",)).start()
    result = execute(ctx, [])
    # a 30 s sleep ending with the kill's code and reason: the kill ended it
    assert (result.exit_code, result.message) == (137, "timed out after 1 minute")


def test_auto_prefers_container_then_sandbox_then_host(tmp_path, monkeypatch):
    have = {"buildah": "/usr/bin/buildah", "bwrap": "/usr/bin/bwrap"}
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: have.get(name))
    assert select_runtime("auto", tmp_path).name == "container"
    del have["buildah"]
    rt = select_runtime("auto", tmp_path)
    assert (rt.name, rt.reason) == ("sandbox", "auto: bwrap is installed, buildah is not")
    del have["bwrap"]
    assert select_runtime("auto", tmp_path).name == "host"
    assert select_runtime("sandbox", tmp_path).name == "sandbox"  # explicit: no fallback


def _cgroup(ctl: str) -> None:
    require_service(any(ctl in h.controllers for h in hierarchies()), f"a writable {ctl} cgroup")


def test_memory_limit_is_enforced_and_named_in_the_log(tmp_path):
    _cgroup("memory")
    python = shutil.which("python3")
    ctx = make_ctx(
        tmp_path,
        HostRuntime(),
        f'{python} -c "b = bytearray(400 * 1024 * 1024); print(len(b))"',
        memoryLimit="64Mi",
    )
    result = run_script(ctx)
    assert result.exit_code != 0, ctx.log.text
    assert "memory.limit_in_bytes=64Mi" in ctx.log.text or "memory.max=64Mi" in ctx.log.text


def test_the_largest_limits_the_api_accepts_apply_to_a_real_step(tmp_path):
    """executor-memory-limit=1Pi was accepted by the API and then failed every step."""
    _cgroup("memory")
    ctx = make_ctx(tmp_path, HostRuntime(), "echo ran")
    ctx.spec.settings.update({"executor-memory-limit": "7Ei", "executor-cpu-limit": "1m"})
    result = run_script(ctx)
    assert result.exit_code == 0 and "ran\n" in ctx.log.text, ctx.log.text
    assert "memory.limit_in_bytes=7Ei" in ctx.log.text or "memory.max=7Ei" in ctx.log.text
    if any("cpu" in h.controllers for h in hierarchies()):  # 1m exactly: 1 ms per 1 s period
        assert "cpu.cfs_quota_us=1000/1000000" in ctx.log.text or "cpu.max=1000 1000000" in ctx.log.text


def test_limits_fall_back_to_rlimits(tmp_path, monkeypatch):
    from devops.engines.local import limits

    monkeypatch.setattr(limits, "hierarchies", lambda: ())
    require_tool("prlimit")
    python = shutil.which("python3")
    ctx = make_ctx(
        tmp_path,
        HostRuntime(),
        f'{python} -c "b = bytearray(400 * 1024 * 1024)"',
        memoryLimit="200Mi",
        cpuLimit="500m",
    )
    result = run_script(ctx)
    assert result.exit_code != 0
    assert "rlimits RLIMIT_AS=200Mi" in ctx.log.text
    assert "cpu=0.5 not enforced" in ctx.log.text


def test_step_is_born_in_its_cgroup_and_the_runner_thread_returns(tmp_path):
    _cgroup("pids")
    before = Path("/proc/thread-self/cgroup").read_text()
    ctx = make_ctx(tmp_path, HostRuntime(), "cat /proc/self/cgroup")
    assert run_script(ctx).exit_code == 0
    assert f"/slipway/{step_limits_name(ctx)}\n" in ctx.log.text  # the step's own cgroup
    assert step_limits_name(ctx).endswith(f".{RT_NAME}.1-0")
    assert Path("/proc/thread-self/cgroup").read_text() == before


def test_sandbox_step_cannot_read_the_hosts_secrets_under_etc(tmp_path):
    """The host's /etc is bound read-only; without capabilities a root step still read
    /etc/shadow (root-owned, 0640) and the services' configuration (passwords)."""
    require_tool("bwrap")
    rt = SandboxRuntime("test")
    rt.setup(None)
    hidden = [p for p in ("/etc/shadow", "/etc/gshadow") if Path(p).is_file() and Path(p).stat().st_size]
    dirs = [d for d in ("/etc/redis", "/etc/postgresql", "/etc/ssl/private") if Path(d).is_dir()]
    require_service(bool(hidden), "a non-empty /etc/shadow on this machine")
    script = "; ".join([f"echo {p}=$(wc -c < {p})" for p in hidden]
                       + [f"echo {d}=$(ls -A {d} | wc -l)" for d in dirs]
                       + ["echo passwd=$(grep -c ^root: /etc/passwd)"])
    ctx = make_ctx(tmp_path, rt, script)
    assert run_script(ctx).exit_code == 0, ctx.log.text
    for p in hidden:  # an empty file, or one the step cannot open: nothing of the host's
        assert f"{p}=0\n" in ctx.log.text or f"{p}=\n" in ctx.log.text, ctx.log.text
    for d in dirs:
        assert f"{d}=0\n" in ctx.log.text, ctx.log.text
    assert "passwd=1\n" in ctx.log.text  # the rest of /etc is still there


def test_sandbox_step_has_no_capabilities(tmp_path):
    require_tool("bwrap")
    rt = SandboxRuntime("test")
    rt.setup(None)
    ctx = make_ctx(
        tmp_path,
        rt,
        "grep CapEff /proc/self/status; mount -t tmpfs none /tmp 2>&1 || echo no-mount",
    )
    assert run_script(ctx).exit_code == 0, ctx.log.text
    assert "CapEff:\t0000000000000000" in ctx.log.text
    assert "no-mount" in ctx.log.text


def test_container_left_by_a_killed_runner_is_replaced(tmp_path, busybox_image):
    busybox_image.buildah(
        "from", "--pull=false", "--name", f"slipway-{RT_NAME}-1-0", busybox_image.name
    )
    rt = ContainerRuntime("test", root=busybox_image.root)
    rt.setup(None)
    ctx = make_ctx(tmp_path, rt, "echo fresh")
    assert run_script(ctx).exit_code == 0, ctx.log.text
    assert "fresh" in ctx.log.text
    names = busybox_image.buildah("containers", "--format", "{{.ContainerName}}").stdout
    assert f"slipway-{RT_NAME}-1-0" not in names
