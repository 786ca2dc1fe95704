"""`container`: the step runs inside its image with buildah (daemonless, root, vfs).

Per step: `buildah from --pull=false IMAGE` makes a working container (the
image comes from local storage when present, else it is pulled; a pull that
fails fails the step with the registry's error and never falls back to
another runtime), then `buildah run --isolation chroot` runs the command with
the workspace bind-mounted at the same path (working dir) and cache mounts
at their targets.

Environment: buildah 1.28 takes values only as `--env NAME=VALUE` (argv, on
the host's process list), so none is given that way. The values go into a
0600 file (`export NAME='value'` lines) in a 0700 directory of the run dir,
bind-mounted at /.slipway; the command runs behind a `/bin/sh` wrapper that
sources the file, deletes it (through the mount) and execs the step. The
directory is removed when the step ends whatever happened.

Isolation: a chroot into the image's filesystem, as root with buildah's
default capabilities (no CAP_NET_ADMIN, CAP_SYS_ADMIN); `buildah run` itself
starts under `unshare --pid --fork --kill-child --mount-proc`, so the step
has its own pid namespace and /proc (buildah's chroot isolation cannot make
one), and inside the step's own network namespace (runtimes/network.py;
chroot isolation refuses `--network`). See README *Step runtimes*.

Storage: `--root <data>/containers/storage --runroot <data>/containers/run
--storage-driver vfs`; `storage_args()` gives the same flags to the
publishImageConfig step so it sees the same images.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from devops.engines.local.errors import RuntimeUnavailable, StepStartError
from devops.engines.local.runtimes import network
from devops.engines.local.runtimes.base import (
    StepProcess,
    StepRuntime,
    kill_tree,
    release,
    spawn,
)

if TYPE_CHECKING:
    from devops.engines.local.context import StepContext
    from devops.engines.local.limits import Enforcement


ENV_MOUNT = "/.slipway"
# Runs inside the container: the values come from the file, never from argv.
ENV_WRAPPER = f'. {ENV_MOUNT}/env && rm -f {ENV_MOUNT}/env && exec "$@"'
SHELL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def env_file_text(env: dict[str, str]) -> str:
    """`export NAME='value'` lines for /bin/sh; StepStartError for a name sh cannot export."""
    lines = []
    for key, value in env.items():
        if not SHELL_NAME.match(key):
            raise StepStartError(
                f"environment variable {key!r} is not a shell name (letters, digits, _): "
                "the container runtime cannot pass it"
            )
        if "\x00" in value:
            raise StepStartError(f"environment variable {key} contains a NUL byte")
        lines.append(f"export {key}='" + value.replace("'", "'\\''") + "'\n")
    return "".join(lines)


def write_env_dir(run_dir: Path, name: str, env: dict[str, str]) -> Path:
    """A 0700 directory holding the 0600 `env` file of one step; the caller removes it."""
    text = env_file_text(env)
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    d = run_dir / f"env-{name}"
    shutil.rmtree(d, ignore_errors=True)  # left by a killed runner
    d.mkdir(mode=0o700)
    fd = os.open(d / "env", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return d


def storage_args(root: Path) -> list[str]:
    """Global buildah flags selecting Slipway's image storage under `root`."""
    return [
        "--root",
        str(root / "storage"),
        "--runroot",
        str(root / "run"),
        "--storage-driver",
        "vfs",
    ]


def remove_containers(root: Path, execution: str) -> int:
    """Remove the working containers an execution left (its runner was killed). Idempotent."""
    buildah = shutil.which("buildah")
    if not buildah or not (root / "storage").is_dir():
        return 0
    listed = subprocess.run(
        [buildah, *storage_args(root), "containers", "--format", "{{.ContainerName}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    names = [n for n in listed.stdout.split() if n.startswith(f"slipway-{execution}-")]
    if names:
        subprocess.run(
            [buildah, *storage_args(root), "rm", *names], capture_output=True, check=False
        )
    return len(names)


class ContainerRuntime(StepRuntime):
    name = "container"
    uses_image = True
    isolates_network = True

    def __init__(
        self, reason: str = "", root: Path | None = None, buildah: str | None = None
    ) -> None:
        super().__init__(reason)
        self.buildah = buildah or shutil.which("buildah") or ""
        self.unshare = shutil.which("unshare") or "unshare"
        self.root = root
        self._containers: set[str] = set()
        # container -> a pull request's own image it was made from, removed from local storage
        # with the container (see _pull_request_image).
        self._forget: dict[str, str] = {}

    def setup(self, run: object) -> None:
        if not self.buildah:
            raise RuntimeUnavailable("the container runtime needs buildah (Debian package buildah)")
        if self.root is None:
            raise RuntimeUnavailable("the container runtime needs a storage root")
        self.root.mkdir(parents=True, exist_ok=True)
        super().setup(run)

    def _cmd(self, *args: str) -> list[str]:
        assert self.root is not None
        return [self.buildah, *storage_args(self.root), *args]

    def _from(
        self, name: str, image: str, env: dict[str, str], deadline: float, dns: list[str]
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            self._cmd("from", "--pull=false", "--quiet", *dns, "--name", name, image),
            capture_output=True,
            timeout=max(1.0, deadline - time.monotonic()),
            env=env,
            check=False,
        )

    def _dns(self, ctx: StepContext) -> list[str]:
        """`--dns 10.0.2.3` when the host has only loopback resolvers (buildah would copy them in)."""
        if self.network_mode != "outbound" or network.step_resolv_conf(ctx.run_dir) is None:
            return []
        return ["--dns", network.SLIRP_DNS]

    def start_step(
        self, ctx: StepContext, argv: list[str], limits: Enforcement | None
    ) -> StepProcess:
        image = ctx.config.type.image  # type: ignore[union-attr]
        name = f"slipway-{ctx.spec.execution}-{ctx.stage}-{ctx.step}"
        t0 = time.monotonic()
        try:
            from devops.engines.local.images import (  # (images/cache work)
                project_image_for,
                registry_access,
            )

            # registries.conf (built-in registry insecure, mirror) + auth file, 0600 in the run dir
            env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **registry_access(ctx)}
            dns = self._dns(ctx)
            made = self._from(name, image, env, ctx.deadline, dns)
            if made.returncode != 0 and b"already in use" in made.stderr:
                # Left by a runner that was killed: remove it and try once more.
                subprocess.run(self._cmd("rm", name), capture_output=True, check=False)
                made = self._from(name, image, env, ctx.deadline, dns)
            if made.returncode != 0 and (project_image := project_image_for(ctx.spec, ctx.data_dir, image)):
                # A pull request's run: not built in its own namespace, so the project's image.
                fallback = self._from(name, project_image, env, ctx.deadline, dns)
                if fallback.returncode == 0:
                    ctx.say(f"{image} is not in this run's namespace: using the project's {project_image}")
                    image, made = project_image, fallback
        except subprocess.TimeoutExpired:
            raise StepStartError(
                f"pulling image {image} did not finish before the timeout"
            ) from None
        if made.returncode != 0:
            err = made.stderr.decode(errors="replace").strip().splitlines()
            raise StepStartError(
                f"image {image} could not be pulled: {err[-1] if err else 'buildah from failed'}"
            )
        self._containers.add(name)
        if _pull_request_image(ctx, image):
            self._forget[name] = image
        ctx.say(f"image: {image} (ready in {time.monotonic() - t0:.2f}s)")
        proc = StepProcess(None, enforcement=limits, container=name)
        try:
            proc.extra["env_dir"] = env_dir = write_env_dir(ctx.run_dir, name, ctx.env)
            ws = str(ctx.workspace)
            args = ["run", "--isolation", "chroot", "--workingdir", ws, "-v", f"{ws}:{ws}"]
            for m in ctx.mounts:
                target = m.target if m.target.startswith("/") else f"{ws}/{m.target}"
                Path(m.source).mkdir(parents=True, exist_ok=True)
                args += ["-v", f"{m.source}:{target}" + (":ro" if m.read_only else "")]
            args += ["-v", f"{env_dir}:{ENV_MOUNT}"]
            args += [name, "--", "/bin/sh", "-c", ENV_WRAPPER, "slipway-env", *argv]
            proc.extra["network"] = net = self.open_network(ctx)
            unshare = [self.unshare, "--pid", "--fork", "--kill-child", "--mount-proc", "--"]
            proc.popen = spawn(
                unshare + self._cmd(*args),
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                cwd=ws,
                limits=limits,
                net=net,
            )
        except BaseException as exc:
            release(proc)
            self._remove(name)
            if isinstance(exc, OSError):
                raise StepStartError(f"cannot start buildah: {exc.strerror}") from None
            raise
        return proc

    def destroy_step(self, proc: StepProcess, reason: str = "") -> None:
        super().destroy_step(proc, reason)
        self._remove(proc.container)

    def _after_exit(self, proc: StepProcess) -> None:
        kill_tree(proc, wait=False)
        release(proc)
        self._remove(proc.container)

    def _remove(self, name: str) -> None:
        if name and name in self._containers:
            self._containers.discard(name)
            subprocess.run(self._cmd("rm", name), capture_output=True)
        image = self._forget.pop(name, "")
        if image:
            # Not -f: a parallel step of the run may still use it; the last one removes it.
            subprocess.run(self._cmd("rmi", image), capture_output=True)

    def destroy(self) -> None:
        for name in list(self._containers):
            self._remove(name)


def _pull_request_image(ctx: StepContext, image: str) -> bool:
    """Whether `image` is one a pull request's run pushed to the built-in registry (its own
    `<project id>/pr/<execution>/...`). Pulled into the shared storage it must not stay:
    buildah's `--layers` takes any local image with a matching history as a cached layer,
    and a trusted build must never reuse what a pull request built."""
    if ctx.spec.trusted:
        return False
    from devops.engines.local.images import builtin_address
    from devops.registry.tokens import pr_namespace

    address = builtin_address(ctx.spec, ctx.data_dir)
    return bool(address) and image.startswith(f"{address}/{pr_namespace(ctx.spec.project_id)}")
