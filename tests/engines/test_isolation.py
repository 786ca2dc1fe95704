"""Issue 8, points 1-3: step values never on a command line, own pid namespace, own network.

Everything real: buildah with the busybox image, bwrap, slirp4netns, the
machine's PostgreSQL and Redis, a docker-registry, and a network namespace
made here (veth pair, a server inside) standing in for the internet.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from devops.api.validation import check_setting
from devops.engines.local.errors import RuntimeUnavailable
from devops.engines.local.runtimes.container import ContainerRuntime
from devops.engines.local.runtimes.network import network_mode
from devops.engines.local.runtimes.sandbox import SandboxRuntime
from devops.models import DEFAULT_SETTINGS
from tests.conftest import port_open, require_service, require_tool
from tests.engines.conftest import (
    config,
    log_of,
    make_engine,
    make_spec,
    script,
    step_of,
    wait_done,
)
from tests.engines.test_runtimes import make_ctx, run_script

BANNER = "hello-from-the-internet"


# -- fixtures ---------------------------------------------------------------------


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


@pytest.fixture(scope="module")
def internet():
    """A network namespace of our own with a TCP server at 10.213.N.2: the step's "internet".

    The host reaches it over a veth pair (10.213.N.1/30 on the host side), so
    a step's outbound traffic, relayed by slirp4netns from the host, gets there.
    """
    require_tool("ip")
    require_tool("slirp4netns")
    n = os.getpid() % 250
    ns, host_if, ns_if = f"slw-iso-{os.getpid()}", f"slwi{n}h", f"slwi{n}n"
    host_addr, addr = f"10.213.{n}.1", f"10.213.{n}.2"
    server = None
    _ip("netns", "add", ns)
    try:
        _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _ip("link", "set", ns_if, "netns", ns)
        _ip("addr", "add", f"{host_addr}/30", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("-n", ns, "addr", "add", f"{addr}/30", "dev", ns_if)
        _ip("-n", ns, "link", "set", ns_if, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        # Bounded: at most 200 connections, at most 10 minutes.
        code = (
            "import socket, time\n"
            f"s = socket.create_server(({addr!r}, 8080)); s.settimeout(600)\n"
            "print('ready', flush=True)\n"
            "for _ in range(200):\n"
            "    c, _a = s.accept(); c.sendall(b'" + BANNER + "\\n'); c.close()\n"
        )
        server = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        yield SimpleNamespace(addr=addr, port=8080)
    finally:
        if server is not None:
            server.kill()
            server.wait()
        _ip("netns", "del", ns, check=False)  # takes the veth pair with it
        _ip("link", "del", host_if, check=False)


class Listener:
    """A TCP server of the test on `host` that greets every connection with `banner`."""

    def __init__(self, host: str, banner: str) -> None:
        self.sock = socket.create_server((host, 0))
        self.port = self.sock.getsockname()[1]
        self.banner = banner
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                c.sendall(self.banner.encode() + b"\n")
            finally:
                c.close()

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


@pytest.fixture
def host_services():
    """Host-only services a step must never reach: PostgreSQL, Redis, a web port, a port on all addresses."""
    require_service(port_open("127.0.0.1", 5432), "PostgreSQL at 127.0.0.1:5432")
    require_service(port_open("127.0.0.1", 6379), "Redis at 127.0.0.1:6379")
    web = Listener("127.0.0.1", "web-port-of-the-host")
    wide = Listener("0.0.0.0", "service-on-every-host-address")
    targets = [("127.0.0.1", 5432), ("127.0.0.1", 6379), ("127.0.0.1", web.port)]
    targets += [(a, wide.port) for a in _own_addresses()]
    targets.append(("127.0.0.1", wide.port))
    try:
        yield targets
    finally:
        web.close()
        wide.close()


def _own_addresses() -> list[str]:
    """The host's own IPv4 addresses other than loopback (its `local` routing table)."""
    routes = json.loads(_ip("-j", "-4", "route", "show", "table", "local", "type", "local").stdout)
    return [r["dst"] for r in routes if not r["dst"].startswith("127.")]


def probe_script(targets: list[tuple[str, int]]) -> str:
    """Shell that tries each target with busybox nc and prints `host:port -> what came back`."""
    lines = []
    for host, port in targets:
        lines.append(
            f'echo "{host}:{port} -> $(echo PING | timeout 5 busybox nc -w 3 {host} {port} 2>&1 | head -c 200)"'
        )
    return "\n".join(lines)


def outcome(text: str, host: str, port: int) -> str:
    line = next(line for line in text.splitlines() if line.startswith(f"{host}:{port} -> "))
    return line.split(" -> ", 1)[1]


def assert_blocked(text: str, targets: list[tuple[str, int]]) -> None:
    for host, port in targets:
        got = outcome(text, host, port)
        # A refused/unreachable/prohibited connect: busybox nc says it could not connect.
        assert "can't connect" in got, (host, port, got, text)


def network_settings(mode: str) -> SimpleNamespace:
    """What runtime.setup() reads: the run's spec settings."""
    return SimpleNamespace(spec=SimpleNamespace(settings={"step-network": mode}))


def runtime_of(kind: str, busybox_image=None):
    if kind == "sandbox":
        require_tool("bwrap")
        return SandboxRuntime("test")
    return ContainerRuntime("test", root=busybox_image.root)


@pytest.fixture(params=["sandbox", "container"])
def isolated_runtime(request):
    image = request.getfixturevalue("busybox_image") if request.param == "container" else None
    return lambda mode="outbound": _setup(runtime_of(request.param, image), mode)


def _setup(rt, mode: str):
    rt.setup(network_settings(mode))
    return rt


# -- point 3: network ---------------------------------------------------------------


def test_step_reaches_the_internet_but_no_service_of_the_host(
    tmp_path, isolated_runtime, host_services, internet
):
    rt = isolated_runtime()
    ctx = make_ctx(tmp_path, rt, probe_script([*host_services, (internet.addr, internet.port)]))
    assert run_script(ctx).exit_code == 0, ctx.log.text
    text = ctx.log.text
    first = text.splitlines()[0]
    assert first.startswith(f"[slipway] runtime: {rt.name} (test); network: outbound (slirp4netns")
    assert "host loopback and the host's own addresses blocked" in first
    assert_blocked(text, host_services)
    assert outcome(text, internet.addr, internet.port) == BANNER


def test_step_network_none_reaches_neither(tmp_path, isolated_runtime, host_services, internet):
    rt = isolated_runtime("none")
    ctx = make_ctx(
        tmp_path,
        rt,
        probe_script([*host_services, (internet.addr, internet.port)])
        + "\necho lo=$(busybox ip -o addr show lo | grep -c 127.0.0.1)",
    )
    assert run_script(ctx).exit_code == 0, ctx.log.text
    text = ctx.log.text
    assert text.splitlines()[0] == f"[slipway] runtime: {rt.name} (test); network: none (own namespace, loopback only)"
    assert_blocked(text, [*host_services, (internet.addr, internet.port)])
    assert "lo=1" in text  # the step's own loopback works


def test_host_runtime_says_it_cannot_isolate_the_network(tmp_path, host_services):
    from devops.engines.local.runtimes.host import HostRuntime

    ctx = make_ctx(tmp_path, HostRuntime("test"), probe_script(host_services[2:3]))
    assert run_script(ctx).exit_code == 0, ctx.log.text
    first = ctx.log.text.splitlines()[0]
    assert "network: host (NOT isolated" in first and "reaches every service of this machine" in first
    host, port = host_services[2]
    assert outcome(ctx.log.text, host, port) == "web-port-of-the-host"  # exactly what it says


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """The real docker-registry (token auth) on a free loopback port."""
    require_tool("docker-registry")
    from devops.registry.server import ensure_registry, stop_registry

    data = tmp_path_factory.mktemp("isolation-registry")
    info = ensure_registry(data, notify_url="")
    yield info
    stop_registry(data)


def test_built_in_registry_is_relayed_with_its_credentials_and_nothing_else(
    tmp_path, isolated_runtime, registry, host_services
):
    from pathlib import Path

    from devops.registry.tokens import Scope, internal_token

    rt = isolated_runtime()
    # A token Slipway signed (the token endpoint itself is on the host's web port: unreachable, on purpose).
    auth = internal_token(Path(registry.directory), [Scope("registry", "catalog", ("*",))])
    # CICD_LOCAL_REGISTRY is the address plus the run's namespace (controller/spec.py); the
    # relay takes the bare address from the RunSpec's value, never from the step's env.
    local = f"{registry.address}/p-rtest"
    sh = (
        'echo "anon: $(busybox wget -q -O - http://${CICD_LOCAL_REGISTRY%%/*}/v2/ 2>&1)"\n'
        'echo "auth: $(busybox wget -q -O - --header "Authorization: Bearer $REG_AUTH"'
        ' http://${CICD_LOCAL_REGISTRY%%/*}/v2/_catalog 2>&1)"\n' + probe_script(host_services)
    )
    ctx = make_ctx(tmp_path, rt, sh, env={"CICD_LOCAL_REGISTRY": local, "REG_AUTH": auth})
    ctx.spec.env["CICD_LOCAL_REGISTRY"] = local
    assert run_script(ctx).exit_code == 0, ctx.log.text
    text = ctx.log.text
    assert "anon: wget: server returned error: HTTP/1.1 401 Unauthorized" in text, text
    assert 'auth: {"repositories":' in text, text
    assert_blocked(text, host_services)  # one port relayed, every other one still closed


def test_step_cannot_remove_its_network_rules(tmp_path, isolated_runtime, host_services):
    """The step owns no capability over its namespace: deleting the `unreachable` routes fails."""
    own = _own_addresses()
    require_service(bool(own), "a non-loopback address on this machine")
    rt = isolated_runtime()
    ctx = make_ctx(
        tmp_path,
        rt,
        f"busybox ip route del {own[0]} 2>&1 || true\n"
        "busybox ip link set lo down 2>&1 || true\n"
        + probe_script(host_services),
    )
    run_script(ctx)
    text = ctx.log.text
    assert "Operation not permitted" in text, text
    assert_blocked(text, host_services)


def test_step_network_setting():
    assert DEFAULT_SETTINGS["step-network"][0] == "outbound"
    assert check_setting("step-network", " none ") == "none"
    assert check_setting("step-network", "") == ""  # back to the default
    with pytest.raises(ValueError, match="outbound or none"):
        check_setting("step-network", "host")
    assert network_mode({}) == "outbound" and network_mode({"step-network": ""}) == "outbound"
    with pytest.raises(RuntimeUnavailable, match="step-network must be one of"):
        SandboxRuntime("test").setup(network_settings("host"))


def test_step_network_setting_reaches_the_runner(repo, data_dir):
    require_tool("bwrap")
    engine = make_engine(data_dir, runtime="sandbox")
    cfg = config([{"name": "B", "steps": [script("busybox ip -o link | grep -c tap0 || true")]}])
    spec = make_spec(repo, cfg, name="p-netnone-1", settings={"step-network": "none"})
    report = wait_done(engine, spec, engine.run(spec))
    text = log_of(data_dir, spec, 1, 0)
    assert report.state == "Success", text
    assert text.splitlines()[0].endswith("; network: none (own namespace, loopback only)")
    assert text.splitlines()[-1] == "0"  # no uplink at all


# -- point 2: pid namespace ---------------------------------------------------------


def test_container_step_sees_only_its_own_processes(tmp_path, busybox_image):
    rt = _setup(ContainerRuntime("test", root=busybox_image.root), "outbound")
    ctx = make_ctx(
        tmp_path,
        rt,
        'echo "pids=$(ls /proc | grep -c "^[0-9]")"; ps -o pid,args; '
        f"test -e /proc/{os.getpid()}/cmdline && echo saw-the-host || echo no-host",
    )
    assert run_script(ctx).exit_code == 0, ctx.log.text
    text = ctx.log.text
    pids = int(text.split("pids=")[1].split()[0])
    assert pids < 10, text  # buildah, its chroot helper, the step's shell and ps
    assert "no-host" in text and "python" not in text  # not this test, not the runner


# -- point 1: no value on any command line ---------------------------------------------


def _ns(pid: int, kind: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:  # gone meanwhile, or a kernel thread
        return b""


def _wait_for(path: Path, what: str, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > end:
            raise AssertionError(f"{what}: {path} did not appear")
        time.sleep(0.05)


def test_two_projects_container_steps_never_see_each_others_secrets(
    repo, data_dir, busybox_image
):
    engine = make_engine(data_dir, runtime="container", container_root=busybox_image.root)
    # Each step: announce itself, wait for "go", dump every cmdline and environ
    # it can see in /proc, say "dumped", wait for "end".
    body = (
        "touch up; while [ ! -e go ]; do sleep 0.05; done; "
        "for p in /proc/[0-9]*; do cat $p/cmdline $p/environ 2>/dev/null || true; echo; done > procdump; "
        "ls /proc > proclist; touch dumped; while [ ! -e end ]; do sleep 0.05; done"
    )
    step = script(body, envFrom=[{"sourceName": "db", "sourceKey": "password", "targetKey": "DB_PASSWORD"}])
    values, specs, handles = {}, {}, {}
    for who in ("a", "b"):
        values[who] = f"sekrit-{who}-{uuid.uuid4().hex}"
        specs[who] = make_spec(
            repo,
            config([{"name": "B", "steps": [dict(step)]}]),
            name=f"p-{who}iso-1",
            project_id=f"p-{who}iso",
            secrets={"db": {"password": values[who]}},
        )
        handles[who] = engine.run(specs[who])
    ws = {who: engine.workspace(specs[who].execution) for who in specs}
    try:
        for who in specs:
            _wait_for(ws[who] / "up", f"step of {who}")
        # Both steps run now. From the host (this test process, root): no
        # command line anywhere holds a value; an environ holds one only for
        # that step's own processes, inside its own pid namespace.
        mine = _ns(os.getpid(), "pid")
        seen_in_own_env = {who: 0 for who in values}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            cmdline = _read(f"/proc/{pid}/cmdline")
            environ = _read(f"/proc/{pid}/environ")
            for who, value in values.items():
                assert value.encode() not in cmdline, (pid, cmdline)
                if value.encode() in environ:
                    assert _ns(pid, "pid") != mine, (pid, cmdline)
                    assert f"CICD_EXECUTION_ID={specs[who].execution}".encode() in environ
                    seen_in_own_env[who] += 1
        # The scan does see the step's own environment (so it would have seen a leak).
        assert all(seen_in_own_env.values()), seen_in_own_env
        # The 0600 env file was read and deleted as the step started.
        for who in specs:
            run_dir = data_dir / "runs" / specs[who].execution
            assert [p for p in run_dir.glob("env-*/*")] == []
        for who in specs:
            (ws[who] / "go").touch()
        for who in specs:
            _wait_for(ws[who] / "dumped", f"dump of {who}")
        for who, other in (("a", "b"), ("b", "a")):
            dump = (ws[who] / "procdump").read_bytes()
            assert values[who].encode() in dump  # it sees its own environment...
            assert values[other].encode() not in dump  # ...never the other project's
            assert len((ws[who] / "proclist").read_text().split()) < 60  # own pid namespace
    finally:
        for who in specs:
            (ws[who] / "end").touch()
    for who in specs:
        report = wait_done(engine, specs[who], handles[who], timeout=60)
        assert report.state == "Success", log_of(data_dir, specs[who], 1, 0)
        assert step_of(report, 1, 0).state == "Success"
        assert list((data_dir / "runs" / specs[who].execution).glob("env-*")) == []


def test_container_env_values_arrive_exactly(tmp_path, busybox_image):
    """Values with quotes, newlines and shell syntax arrive byte for byte (the env file's quoting)."""
    rt = _setup(ContainerRuntime("test", root=busybox_image.root), "none")
    tricky = "it's \"quoted\" $(touch /tmp/pwned-env) `x`\nsecond line \\ end"
    ctx = make_ctx(
        tmp_path,
        rt,
        'printf %s "$TRICKY" > got; test -e /.slipway/env || echo env-file-gone',
        env={"TRICKY": tricky},
    )
    assert run_script(ctx).exit_code == 0, ctx.log.text
    assert (ctx.workspace / "got").read_text() == tricky
    assert "env-file-gone" in ctx.log.text
    assert not list(ctx.run_dir.glob("env-*"))


def test_container_env_name_sh_cannot_export_fails_the_step(tmp_path, busybox_image):
    rt = _setup(ContainerRuntime("test", root=busybox_image.root), "none")
    ctx = make_ctx(tmp_path, rt, "true", env={"NOT-A-NAME": "x"})
    result = run_script(ctx)
    assert result.exit_code == 1 and "'NOT-A-NAME' is not a shell name" in result.message


def test_a_loopback_resolver_is_replaced_by_slirps_forwarder(tmp_path, isolated_runtime, monkeypatch):
    """systemd-resolved's 127.0.0.53 is unreachable from the step: it gets slirp's 10.0.2.3."""
    from devops.engines.local.runtimes import network

    host_conf = tmp_path / "host-resolv.conf"
    host_conf.write_text("nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch corp.example\n")
    assert network.step_resolv_conf(tmp_path / "r1", str(host_conf)).read_text() == (
        "nameserver 10.0.2.3\noptions edns0 trust-ad\nsearch corp.example\n"
    )
    real = tmp_path / "real-resolv.conf"
    real.write_text("nameserver 127.0.0.53\nnameserver 192.0.2.53\n")
    assert network.step_resolv_conf(tmp_path / "r2", str(real)) is None  # a usable one: kept

    original = network.step_resolv_conf
    monkeypatch.setattr(network, "step_resolv_conf", lambda run_dir: original(run_dir, str(host_conf)))
    rt = isolated_runtime()
    ctx = make_ctx(tmp_path, rt, "cat /etc/resolv.conf")
    assert run_script(ctx).exit_code == 0, ctx.log.text
    assert "nameserver 10.0.2.3\n" in ctx.log.text and "127.0.0.53" not in ctx.log.text


def test_step_network_setting_travels_in_the_run_spec(project, tmp_path, settings):
    """The project's `step-network` reaches the engine through RunSpec.settings (and defaults to outbound)."""
    from devops.controller.spec import build_spec
    from devops.models import Pipeline, PipelineExecution
    from tests.controller.conftest import new_execution

    settings.DATA_DIR = tmp_path
    pipeline = Pipeline.objects.create(project=project, repository_url="/nonexistent/repo")

    def spec_settings() -> dict:
        ex = new_execution(pipeline)
        return build_spec(PipelineExecution.objects.get(pk=ex.pk)).settings

    assert network_mode(spec_settings()) == "outbound"
    project.settings.filter(name="step-network").update(value="none")
    assert spec_settings()["step-network"] == "none"
