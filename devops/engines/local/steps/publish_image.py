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
  docker plugin read it) and every `BUILD_ARG_<NAME>` variable. Those that
  come from secrets (the variable is an `envFrom` target, or its value is one
  the run masks) are NOT build args: buildah's `--secret id=NAME,src=FILE`
  (a 0600 file in the run directory, deleted when the build ends) exposes
  them to `RUN --mount=type=secret,id=NAME` as /run/secrets/NAME, so they are
  never on a command line and never in the image's history or config. The
  others stay `--build-arg` (visible in `buildah history`, as in Docker).
- Push: every tag, to the built-in registry (pushRemote false; plain http on
  loopback with its credentials) or to the remote registry (credentials from
  the project's registry credentials, RunSpec.registry_auth). Credentials go
  through a 0600 auth file, never argv or the log. The digest of the pushed
  manifest is printed and returned as `StepResult.image_digest`.
- The built-in registry keeps each project's images under `<project id>/`,
  as Rancher gave each project a registry of its own: `tag: myorg/app:1`
  pushes `<address>/<project id>/myorg/app:1`, the namespace added here
  (`images.builtin_repository`; its token auth refuses anything else,
  devops/registry/tokens.py). A name that is no repository name or starts
  with another project's id fails the step before the build.
- Runs of pull requests (`spec.trusted` False): a push to a remote registry
  fails the step with the reason; to the built-in registry the image goes to
  the run's own `<project id>/pr/<execution>/...` (all their credential may
  push: a pull request never replaces an image a trusted run or deploy
  pulls, and a later step of the same run finds the image it built), and
  the build neither uses nor leaves cached layers or a whole-build
  fingerprint (a later trusted build must not reuse what a pull request
  built); the local copy is removed after the push.
- For later steps, as Rancher's kube-apply computed them, in
  `<run_dir>/published-image.env`: CICD_REGISTRY (the registry; for the
  built-in one its address plus the run's namespace, = CICD_LOCAL_REGISTRY),
  CICD_IMAGE_REPO (the repository within it, as the tag wrote it: `myorg/app`)
  and CICD_IMAGE = `$CICD_REGISTRY/$CICD_IMAGE_REPO`, without a tag
  (`image: ${CICD_IMAGE}:${CICD_EXECUTION_SEQUENCE}` in a deploy YAML).
"""
from __future__ import annotations

import dataclasses
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
    builtin_repository,
    fingerprint_file,
    local_registry,
    parse_build_args,
    registry_access,
    resolve_target,
    step_containers_root,
    step_namespace,
    step_storage_args,
)
from devops.engines.local.steps import run_on_host
from devops.registry.server import INSTALL_HINT, answers

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


def build_args(env: dict[str, str], secret_vars: frozenset[str] = frozenset(),
               masked: frozenset[str] = frozenset()) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(plain build args, secret build args) from the step env.

    Secret: from a variable in `secret_vars` (the step's envFrom targets), or
    a value in `masked` (the run's secrets, tokens and passwords).
    """
    args = [(k, v, "PLUGIN_BUILD_ARGS") for k, v in parse_build_args(env.get("PLUGIN_BUILD_ARGS", ""))]
    args += [(k[len("BUILD_ARG_"):], v, k) for k, v in sorted(env.items()) if k.startswith("BUILD_ARG_")]
    plain, secret = [], []
    for name, value, var in args:
        if name:
            (secret if var in secret_vars or (value and value in masked) else plain).append((name, value))
    return plain, secret


def _fail(ctx: StepContext, code: int, message: str) -> StepResult:
    ctx.say(message)
    return StepResult(code, message)


def run(ctx: StepContext) -> StepResult:
    cfg = ctx.config.type
    buildah = shutil.which("buildah")
    if buildah is None:
        return _fail(ctx, 1, "publishImageConfig needs buildah: run `apt-get install buildah`")
    if cfg.push_remote and not ctx.spec.trusted:
        return _fail(ctx, 1, "pushRemote: runs of pull requests never push to remote registries "
                             "(they get no registry credentials); push to the built-in registry instead "
                             "(pushRemote: false)")
    local_address = ""
    if not cfg.push_remote:
        if shutil.which("docker-registry") is None:
            return _fail(ctx, 1, INSTALL_HINT)
        local_address, _ = local_registry(ctx)
        if not local_address or not answers(local_address):
            where = f" at {local_address}" if local_address else ""
            return _fail(ctx, 1, f"the built-in registry is not running{where}; "
                                 "it starts with the controller (or: python manage.py registry start)")
    run_ns = step_namespace(ctx)
    try:
        target = resolve_target(cfg, local_address)
        written = target.repository
        if target.builtin:
            target = dataclasses.replace(
                target, repository=builtin_repository(ctx.spec.project_id, run_ns, target.repository))
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
    args, secret_args = build_args(ctx.env, frozenset(ref.name for ref in ctx.config.env_from),
                                   frozenset(ctx.spec.mask))
    # The whole-build fingerprint sees secret names, not values (buildah's
    # layer cache does not key on secret contents either).
    fp_args = args + [(name, "\0secret") for name, _ in secret_args]
    if not _reuse_build(ctx, buildah, storage, env, dockerfile, context_dir, fp_args, target.refs):
        rc = _build(ctx, buildah, storage, env, dockerfile, context_dir, args, target.refs, secret_args)
        if rc != 0:
            return _fail(ctx, rc, f"image build failed (buildah exit {rc})")

    if target.builtin and not ctx.spec.trusted:
        ctx.say(f"a pull request's run: pushing to its own namespace {run_ns} (never to the project's "
                f"images, which trusted runs and deploys pull)")
    try:
        digest = _push(ctx, buildah, storage, env, target)
    finally:
        if not ctx.spec.trusted:
            _forget_image(ctx, buildah, storage, env, target.refs)
    if isinstance(digest, StepResult):
        return digest
    if target.builtin:
        # The path within CICD_REGISTRY (= CICD_LOCAL_REGISTRY): what the tag wrote, less `<project id>/`.
        _export(ctx, f"{target.registry}/{run_ns.rstrip('/')}", target.repository.removeprefix(run_ns))
    else:
        _export(ctx, target.registry, written)
    return StepResult(0, "", image_digest=digest)


def _push(ctx: StepContext, buildah: str, storage: list[str], env: dict[str, str], target) -> str | StepResult:
    """Push every tag; the last digest, or the failed StepResult."""
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
    return digest


def _forget_image(ctx: StepContext, buildah: str, storage: list[str], env: dict[str, str], refs: list[str]) -> None:
    """Remove a pull request's image from local storage once pushed.

    buildah's `--layers` takes ANY local image whose history matches as a
    cache hit, the final image of a `--layers=false` build included; kept,
    a pull request's image would be reused by the next trusted build.
    """
    done = subprocess.run([buildah, *storage, "rmi", "-f", *refs], capture_output=True, text=True, env=env,
                          check=False)
    if done.returncode == 0:
        ctx.say("the image was removed from local storage (a pull request's build is never reused as a cache)")
    else:
        ctx.say(f"could not remove the image from local storage (buildah exit {done.returncode})")


def _image_id(buildah: str, storage: list[str], env: dict[str, str], ref: str) -> str | None:
    out = subprocess.run([buildah, *storage, "inspect", "--type", "image", "--format", "{{.FromImageID}}", ref],
                         capture_output=True, text=True, env=env, check=False)
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def _reuse_build(ctx: StepContext, buildah: str, storage: list[str], env: dict[str, str], dockerfile: Path,
                 context_dir: Path, args: list[tuple[str, str]], refs: list[str]) -> bool:
    """Tag the image of an identical earlier build instead of running bud (see images.py).

    The step env `SLIPWAY_BUILD_REUSE=false` turns this off (bud runs, layers still reused).
    """
    if not ctx.spec.trusted or ctx.env.get("SLIPWAY_BUILD_REUSE", "").strip().lower() in ("0", "false", "no", "off"):
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


def _secret_files(ctx: StepContext, secret_args: list[tuple[str, str]]) -> tuple[Path, list[str]]:
    """Write each secret build arg to a 0600 file; (their directory, the `--secret` flags)."""
    directory = Path(ctx.run_dir) / "containers" / f"secrets-{ctx.stage}-{ctx.step}"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(mode=0o700, parents=True)
    flags: list[str] = []
    for n, (name, value) in enumerate(secret_args):
        path = directory / str(n)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(value)
        flags += ["--secret", f"id={name},src={path}"]
    return directory, flags


def _build(ctx: StepContext, buildah: str, storage: list[str], env: dict[str, str], dockerfile: Path,
           context_dir: Path, args: list[tuple[str, str]], refs: list[str],
           secret_args: list[tuple[str, str]] = ()) -> int:
    iidfile = Path(ctx.run_dir) / "containers" / f"iid-{ctx.stage}-{ctx.step}"
    # A pull request's build must not leave layers that a trusted build would
    # reuse (cache poisoning): it neither reads nor writes buildah's layer cache.
    layers = "--layers" if ctx.spec.trusted else "--layers=false"
    argv = [buildah, *storage, "bud", layers, "--isolation", "chroot", "--iidfile", str(iidfile),
            "-f", str(dockerfile)]
    for name, value in args:
        argv += ["--build-arg", f"{name}={value}"]
    for ref in refs:
        argv += ["-t", ref]
    secrets_dir = None
    if secret_args:
        secrets_dir, flags = _secret_files(ctx, list(secret_args))
        argv += flags
        ctx.say(f"secret build args (RUN --mount=type=secret,id=NAME reads /run/secrets/NAME): "
                f"{', '.join(name for name, _ in secret_args)}")
    argv.append(str(context_dir))
    ctx.say(f"building {', '.join(refs)} (buildah bud --layers, layers kept under the data dir)" if ctx.spec.trusted
            else f"building {', '.join(refs)} without the layer cache (a pull request's build never writes it)")
    t0 = time.monotonic()
    try:
        rc, out = _run(ctx, argv, env)
    finally:
        if secrets_dir is not None:
            shutil.rmtree(secrets_dir, ignore_errors=True)
    if rc != 0:
        return rc
    ctx.say(f"built in {time.monotonic() - t0:.1f}s; {out.cached} of {out.steps} build steps reused cached layers")
    fp = getattr(ctx, "build_fingerprint", None)
    if fp and iidfile.exists() and ctx.spec.trusted:
        record = fingerprint_file(step_containers_root(ctx), fp)
        record.parent.mkdir(parents=True, exist_ok=True)
        tmp = record.with_suffix(".tmp")
        tmp.write_text(iidfile.read_text().strip())
        os.replace(tmp, record)
    return 0


def _export(ctx: StepContext, registry: str, repository: str) -> None:
    """CICD_REGISTRY / CICD_IMAGE_REPO / CICD_IMAGE for later steps (DESIGN §3; Rancher's kube-apply:
    CICD_IMAGE="$CICD_REGISTRY/$CICD_IMAGE_REPO", no tag)."""
    path = Path(ctx.run_dir) / "published-image.env"
    path.write_text(f"CICD_REGISTRY={registry}\nCICD_IMAGE_REPO={repository}\n"
                    f"CICD_IMAGE={registry}/{repository}\n")


def published_image_env(run_dir: Path) -> dict[str, str]:
    """What the nearest earlier publish step of this execution exported (empty before one ran)."""
    try:
        text = (Path(run_dir) / "published-image.env").read_text()
    except FileNotFoundError:
        return {}
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
