"""`container`: the step runs inside its image with buildah (daemonless, root, vfs).

Per step: `buildah from --pull=false IMAGE` makes a working container (the
image comes from local storage when present, else it is pulled; a pull that
fails fails the step with the registry's error and never falls back to
another runtime), then `buildah run --isolation chroot` runs the command with
the workspace bind-mounted at the same path (working dir) and cache mounts
at their targets. Environment values go through `--env NAME=VALUE` (buildah
1.28 cannot read them from its own environment); argv is never logged.
Isolation: a chroot into the image's filesystem, as root, sharing the host's
network and pid namespace (weaker than a sandbox; see README *Step runtimes*).

Storage: `--root <data>/containers/storage --runroot <data>/containers/run
--storage-driver vfs`; `storage_args()` gives the same flags to the
publishImageConfig step so it sees the same images.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from devops.engines.local.errors import RuntimeUnavailable, StepStartError
from devops.engines.local.runtimes.base import StepProcess, StepRuntime, kill_tree, spawn

if TYPE_CHECKING:
    from devops.engines.local.context import StepContext
    from devops.engines.local.limits import Enforcement


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

    def __init__(
        self, reason: str = "", root: Path | None = None, buildah: str | None = None
    ) -> None:
        super().__init__(reason)
        self.buildah = buildah or shutil.which("buildah") or ""
        self.root = root
        self._containers: set[str] = set()

    def setup(self, run: object) -> None:
        if not self.buildah:
            raise RuntimeUnavailable("the container runtime needs buildah (Debian package buildah)")
        if self.root is None:
            raise RuntimeUnavailable("the container runtime needs a storage root")
        self.root.mkdir(parents=True, exist_ok=True)

    def _cmd(self, *args: str) -> list[str]:
        assert self.root is not None
        return [self.buildah, *storage_args(self.root), *args]

    def _from(
        self, name: str, image: str, env: dict[str, str], deadline: float
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            self._cmd("from", "--pull=false", "--quiet", "--name", name, image),
            capture_output=True,
            timeout=max(1.0, deadline - time.monotonic()),
            env=env,
            check=False,
        )

    def start_step(
        self, ctx: StepContext, argv: list[str], limits: Enforcement | None
    ) -> StepProcess:
        image = ctx.config.type.image  # type: ignore[union-attr]
        name = f"slipway-{ctx.spec.execution}-{ctx.stage}-{ctx.step}"
        t0 = time.monotonic()
        try:
            from devops.engines.local.images import registry_access  # (images/cache work)

            # registries.conf (built-in registry insecure, mirror) + auth file, 0600 in the run dir
            env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **registry_access(ctx)}
            made = self._from(name, image, env, ctx.deadline)
            if made.returncode != 0 and b"already in use" in made.stderr:
                # Left by a runner that was killed: remove it and try once more.
                subprocess.run(self._cmd("rm", name), capture_output=True, check=False)
                made = self._from(name, image, env, ctx.deadline)
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
        ctx.say(f"image: {image} (ready in {time.monotonic() - t0:.2f}s)")
        ws = str(ctx.workspace)
        args = ["run", "--isolation", "chroot", "--workingdir", ws, "-v", f"{ws}:{ws}"]
        for m in ctx.mounts:
            target = m.target if m.target.startswith("/") else f"{ws}/{m.target}"
            Path(m.source).mkdir(parents=True, exist_ok=True)
            args += ["-v", f"{m.source}:{target}" + (":ro" if m.read_only else "")]
        for key, value in ctx.env.items():
            args += ["--env", f"{key}={value}"]
        args += [name, "--", *argv]
        try:
            popen = spawn(
                self._cmd(*args),
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                cwd=ws,
                limits=limits,
            )
        except OSError as exc:
            raise StepStartError(f"cannot start buildah: {exc.strerror}") from None
        return StepProcess(popen, enforcement=limits, container=name)

    def destroy_step(self, proc: StepProcess, reason: str = "") -> None:
        super().destroy_step(proc, reason)
        self._remove(proc.container)

    def _after_exit(self, proc: StepProcess) -> None:
        kill_tree(proc, wait=False)
        self._remove(proc.container)

    def _remove(self, name: str) -> None:
        if name and name in self._containers:
            self._containers.discard(name)
            subprocess.run(self._cmd("rm", name), capture_output=True)

    def destroy(self) -> None:
        for name in list(self._containers):
            self._remove(name)
