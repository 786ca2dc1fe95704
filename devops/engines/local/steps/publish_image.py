"""Step kind `publishImageConfig`: `buildah bud --layers`, then push (DESIGN §3, §5).

- Build: the persistent vfs storage the container runtime uses too
  (`options.containers_root`, default DATA_DIR/containers) and `--layers`, so
  a rebuild with unchanged inputs reuses every layer (the log says how many);
  `--isolation chroot` needs no daemon and no user namespaces.
- Whole-build reuse: when nothing the build reads changed (Dockerfile, the
  COPY/ADD sources, build args, base image IDs) the image of that earlier
  build is tagged without running bud (`SLIPWAY_BUILD_REUSE=false` in the
  step env turns it off).
- Build args: `PLUGIN_BUILD_ARGS` in the step's env (`A=1,B=2`, as Rancher's
  docker plugin read it) and every `BUILD_ARG_<NAME>` variable.
- Push: every tag, to the built-in registry (pushRemote false; plain http on
  loopback with its credentials) or to the remote registry (credentials from
  the project's registry credentials, RunSpec.registry_auth). Credentials go
  through a 0600 auth file, never argv or the log. The digest of the pushed
  manifest is printed and returned as `StepResult.image_digest`.
- For later steps: CICD_REGISTRY / CICD_IMAGE_REPO / CICD_IMAGE are written
  to `<run_dir>/published-image.env`.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from devops.engines.local.context import StepResult
from devops.engines.local.errors import StepStartError
from devops.engines.local.images import (
    build_fingerprint,
    fingerprint_file,
    local_registry,
    parse_build_args,
    registry_access,
    resolve_target,
    step_containers_root,
    step_storage_args,
)
from devops.engines.local.registry import INSTALL_HINT, answers
from devops.engines.local.steps import run_on_host

if TYPE_CHECKING:
    from devops.engines.local.context import StepContext


def _inside(workspace: Path, rel: str) -> Path | None:
    path = (workspace / rel).resolve()
    ws = workspace.resolve()
    return path if path == ws or ws in path.parents else None


class _BuildOutput:
    """The step log, counting build steps and reused layers as the lines pass.

    Build output goes straight to the log; only the line being read is held,
    at most HELD bytes of it (the counted markers are at a line's start or in
    short lines), so a build printing gigabytes costs no memory here.
    """

    HELD = 4096

    def __init__(self, log) -> None:
        self.log = log
        self.steps = 0    # `STEP n/m: ...` lines, FROM excluded
        self.cached = 0   # `Using cache` lines
        self._line = b""

    def write(self, data: bytes) -> None:
        self.log.write(data)
        start = 0
        data = data.replace(b"\r", b"\n")  # progress output rewrites its line with \r
        while (nl := data.find(b"\n", start)) != -1:
            self._add(data[start:nl])
            self._count()
            start = nl + 1
        self._add(data[start:])

    def _add(self, part: bytes) -> None:
        room = self.HELD - len(self._line)
        if room > 0 and part:
            self._line += part[:room]

    def _count(self) -> None:
        line, self._line = self._line.decode(errors="replace"), b""
        if line.startswith("STEP ") and ": FROM " not in line:
            self.steps += 1
        if "Using cache" in line:
            self.cached += 1

    def close(self) -> None:
        if self._line:
            self._count()


def _run(ctx: StepContext, argv: list[str], env: dict[str, str]) -> tuple[int, _BuildOutput]:
    """Run buildah for the step (output into its log, killed by ctx.kill()); (exit code, counts)."""
    log = ctx.log
    out = _BuildOutput(log)
    ctx.log = out
    try:
        return run_on_host(ctx, argv, env=env, cwd=str(ctx.workspace)), out
    except StepStartError as e:
        log.write(f"[slipway] {e}\n".encode())
        return 137, out
    finally:
        ctx.log = log
        out.close()


def build_args(env: dict[str, str]) -> list[tuple[str, str]]:
    args = parse_build_args(env.get("PLUGIN_BUILD_ARGS", ""))
    args += [(k[len("BUILD_ARG_"):], v) for k, v in sorted(env.items()) if k.startswith("BUILD_ARG_")]
    return [(k, v) for k, v in args if k]


def _fail(ctx: StepContext, code: int, message: str) -> StepResult:
    ctx.say(message)
    return StepResult(code, message)


def run(ctx: StepContext) -> StepResult:
    cfg = ctx.config.type
    buildah = shutil.which("buildah")
    if buildah is None:
        return _fail(ctx, 1, "publishImageConfig needs buildah: run `apt-get install buildah`")
    local_address = ""
    if not cfg.push_remote:
        if shutil.which("docker-registry") is None:
            return _fail(ctx, 1, INSTALL_HINT)
        local_address, _ = local_registry(ctx)
        if not local_address or not answers(local_address):
            where = f" at {local_address}" if local_address else ""
            return _fail(ctx, 1, f"the built-in registry is not running{where}; "
                                 "it starts with the controller (or: python manage.py registry start)")
    try:
        target = resolve_target(cfg, local_address)
    except ValueError as e:
        return _fail(ctx, 1, str(e))
    if cfg.push_remote is False and cfg.registry:
        ctx.say(f"pushRemote is false: pushing to the built-in registry, not {cfg.registry}")

    dockerfile = _inside(ctx.workspace, cfg.dockerfile_path)
    context_dir = _inside(ctx.workspace, cfg.build_context)
    if dockerfile is None or context_dir is None:
        return _fail(ctx, 1, "dockerfilePath and buildContext must stay inside the workspace")
    if not dockerfile.is_file():
        return _fail(ctx, 1, f"no Dockerfile at {cfg.dockerfile_path}")

    # Not the controller's environment (database URL, keys): buildah needs PATH and its files.
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
           "HOME": os.environ.get("HOME", "/root")}
    env.update(registry_access(ctx))
    storage = step_storage_args(ctx)
    args = build_args(ctx.env)
    if not _reuse_build(ctx, buildah, storage, env, dockerfile, context_dir, args, target.refs):
        rc = _build(ctx, buildah, storage, env, dockerfile, context_dir, args, target.refs)
        if rc != 0:
            return _fail(ctx, rc, f"image build failed (buildah exit {rc})")

    digest = ""
    digest_file = Path(ctx.run_dir) / "containers" / f"digest-{ctx.stage}-{ctx.step}"
    for ref in target.refs:
        push = [buildah, *storage, "push", "--digestfile", str(digest_file)]
        if target.builtin:
            push.append("--tls-verify=false")  # loopback plain http; registries.conf says so too
        push += [ref, f"docker://{ref}"]
        ctx.say(f"pushing {ref}")
        rc, _ = _run(ctx, push, env)
        if rc != 0:
            return _fail(ctx, rc, f"push of {ref} failed (buildah exit {rc})")
        digest = digest_file.read_text().strip()
        ctx.say(f"pushed {ref}@{digest}")
    _export(ctx, target.registry, target.repository, target.refs[0])
    return StepResult(0, "", image_digest=digest)


def _image_id(buildah: str, storage: list[str], env: dict[str, str], ref: str) -> str | None:
    out = subprocess.run([buildah, *storage, "inspect", "--type", "image", "--format", "{{.FromImageID}}", ref],
                         capture_output=True, text=True, env=env, check=False)
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def _reuse_build(ctx: StepContext, buildah: str, storage: list[str], env: dict[str, str], dockerfile: Path,
                 context_dir: Path, args: list[tuple[str, str]], refs: list[str]) -> bool:
    """Tag the image of an identical earlier build instead of running bud (see images.py).

    The step env `SLIPWAY_BUILD_REUSE=false` turns this off (bud runs, layers still reused).
    """
    if ctx.env.get("SLIPWAY_BUILD_REUSE", "").strip().lower() in ("0", "false", "no", "off"):
        ctx.build_fingerprint = None  # type: ignore[attr-defined]
        return False
    try:
        fp = build_fingerprint(dockerfile, context_dir, args, lambda ref: _image_id(buildah, storage, env, ref))
    except OSError:
        fp = None
    ctx.build_fingerprint = fp  # type: ignore[attr-defined]
    if fp is None:
        return False
    record = fingerprint_file(step_containers_root(ctx), fp)
    try:
        image = record.read_text().strip()
    except FileNotFoundError:
        return False
    if not image or _image_id(buildah, storage, env, image) is None:
        return False
    t0 = time.monotonic()
    tagged = subprocess.run([buildah, *storage, "tag", image, *refs], capture_output=True, text=True, env=env,
                            check=False)
    if tagged.returncode != 0:
        return False
    ctx.say(f"build inputs unchanged (Dockerfile, context, build args, base images): every layer reused, "
            f"image {image[:12]} tagged in {time.monotonic() - t0:.2f}s without running buildah bud")
    return True


def _build(ctx: StepContext, buildah: str, storage: list[str], env: dict[str, str], dockerfile: Path,
           context_dir: Path, args: list[tuple[str, str]], refs: list[str]) -> int:
    iidfile = Path(ctx.run_dir) / "containers" / f"iid-{ctx.stage}-{ctx.step}"
    argv = [buildah, *storage, "bud", "--layers", "--isolation", "chroot", "--iidfile", str(iidfile),
            "-f", str(dockerfile)]
    for name, value in args:
        argv += ["--build-arg", f"{name}={value}"]
    for ref in refs:
        argv += ["-t", ref]
    argv.append(str(context_dir))
    ctx.say(f"building {', '.join(refs)} (buildah bud --layers, layers kept under the data dir)")
    t0 = time.monotonic()
    rc, out = _run(ctx, argv, env)
    if rc != 0:
        return rc
    ctx.say(f"built in {time.monotonic() - t0:.1f}s; {out.cached} of {out.steps} build steps reused cached layers")
    fp = getattr(ctx, "build_fingerprint", None)
    if fp and iidfile.exists():
        record = fingerprint_file(step_containers_root(ctx), fp)
        record.parent.mkdir(parents=True, exist_ok=True)
        tmp = record.with_suffix(".tmp")
        tmp.write_text(iidfile.read_text().strip())
        os.replace(tmp, record)
    return 0


def _export(ctx: StepContext, registry: str, repository: str, image: str) -> None:
    """CICD_REGISTRY / CICD_IMAGE_REPO / CICD_IMAGE for later applyYaml steps (DESIGN §3)."""
    path = Path(ctx.run_dir) / "published-image.env"
    path.write_text(f"CICD_REGISTRY={registry}\nCICD_IMAGE_REPO={registry}/{repository}\n"
                    f"CICD_IMAGE={image}\n")


def published_image_env(run_dir: Path) -> dict[str, str]:
    """What the nearest earlier publish step of this execution exported (empty before one ran)."""
    try:
        text = (Path(run_dir) / "published-image.env").read_text()
    except FileNotFoundError:
        return {}
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
