"""`sandbox`: the step runs on the host inside bwrap (bubblewrap).

What the step sees: system directories (/usr, /etc, /bin, /lib*, /sbin, /opt)
read-only, with the host's secrets there hidden (HIDDEN_FILES, HIDDEN_DIRS); its own workspace read-write at the same path; a private /tmp,
/proc (own pid namespace: no other process is visible), /dev; cache mounts
bound at their targets. It does NOT see Slipway's data dir, other workspaces,
run directories (keys, specs) or the controller's environment. The network is
the step's own namespace (runtimes/network.py: outbound through slirp4netns
with the host unreachable, or loopback only); bwrap is started inside it. No
capabilities (--cap-drop ALL, also as root). bwrap dies with the runner (--die-with-parent),
and killing bwrap kills every process of the sandbox (pid-namespace init).
The step's `image` is not used.
"""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from devops.engines.local.errors import RuntimeUnavailable, StepStartError
from devops.engines.local.runtimes import network
from devops.engines.local.runtimes.base import HOST_PATH, StepProcess, StepRuntime, spawn

if TYPE_CHECKING:
    from devops.engines.local.context import StepContext
    from devops.engines.local.limits import Enforcement

SYSTEM_DIRS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt")

# Secrets of the host under the system dirs, hidden from the step (an empty
# file or directory over them). A step runs as the runner's uid (root on a
# typical install): without capabilities it still reads root-owned 0600/0640
# files such as the password hashes, sshd's host keys, TLS private keys and
# the configuration (passwords) of the services a step must not reach.
HIDDEN_FILES = ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/ssh/ssh_host_*",
                "/etc/containers/auth.json")
HIDDEN_DIRS = ("/etc/ssl/private", "/etc/redis", "/etc/postgresql", "/etc/docker", "/etc/sudoers.d",
               "/etc/slipway")


class SandboxRuntime(StepRuntime):
    name = "sandbox"
    isolates_network = True

    def __init__(self, reason: str = "", bwrap: str | None = None) -> None:
        super().__init__(reason)
        self.bwrap = bwrap or shutil.which("bwrap") or ""
        self._system = system_args()

    def setup(self, run: object) -> None:
        if not self.bwrap:
            raise RuntimeUnavailable("the sandbox runtime needs bwrap (Debian package bubblewrap)")
        super().setup(run)

    def argv(self, ctx: StepContext, argv: list[str]) -> list[str]:
        ws = str(ctx.workspace)
        out = [
            self.bwrap,
            "--die-with-parent",
            "--new-session",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            # As root bwrap would keep every capability (module loading, mounts):
            # a step needs none of them to build in its own workspace.
            "--cap-drop",
            "ALL",
            *self._system,
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",
            "--tmpfs",
            "/run",
        ]
        data_dir = str(ctx.data_dir)
        if any(data_dir == d or data_dir.startswith(d + "/") for d in SYSTEM_DIRS):
            out += ["--tmpfs", data_dir]  # the data dir lives under a system dir: hide it
        out += ["--bind", ws, ws]
        resolv = network.step_resolv_conf(ctx.run_dir) if self.network_mode == "outbound" else None
        if resolv is not None:
            # The target of a symlinked /etc/resolv.conf (often under /run, a tmpfs here).
            out += ["--ro-bind", str(resolv), os.path.realpath("/etc/resolv.conf")]
        for m in ctx.mounts:
            target = m.target if m.target.startswith("/") else os.path.join(ws, m.target)
            Path(m.source).mkdir(parents=True, exist_ok=True)
            out += ["--ro-bind" if m.read_only else "--bind", str(m.source), target]
        out += ["--chdir", ws, "--", *argv]
        return out

    def start_step(
        self, ctx: StepContext, argv: list[str], limits: Enforcement | None
    ) -> StepProcess:
        env = {"PATH": HOST_PATH, "HOME": "/tmp", **ctx.env}
        net = self.open_network(ctx)
        try:
            popen = spawn(
                self.argv(ctx, argv), env=env, cwd=str(ctx.workspace), limits=limits, net=net
            )
        except BaseException as exc:
            if net is not None:
                net.close()
            if isinstance(exc, OSError):
                raise StepStartError(f"cannot start bwrap: {exc.strerror}") from None
            raise
        return StepProcess(popen, enforcement=limits, extra={"network": net} if net else {})


def system_args() -> list[str]:
    """Read-only binds of the host's system dirs, keeping merged-/usr symlinks as symlinks."""
    out: list[str] = []
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            out += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            out += ["--ro-bind", d, d]
    for pattern in HIDDEN_FILES:
        for path in sorted(glob.glob(pattern)):
            if os.path.isfile(path) and not os.path.islink(path):
                out += ["--ro-bind", "/dev/null", path]
    for path in HIDDEN_DIRS:
        if os.path.isdir(path) and not os.path.islink(path):
            out += ["--tmpfs", path, "--remount-ro", path]
    return out
