"""Image names, registries.conf, auth files and buildah invocations for the local engine.

Used by the publish step (steps/publish_image.py) and by the container
runtime, which must pull step images such as `${CICD_LOCAL_REGISTRY}/myorg/app:7`
from the built-in registry (CICD_LOCAL_REGISTRY is its address plus the run's
namespace, `<project id>/` or a pull request's `<project id>/pr/<execution>/`;
`builtin_repository` puts a publish tag into the same namespace): `registry_access(ctx)` gives the environment its
buildah calls need (a registries.conf marking the loopback registry insecure
and naming the project's registry mirror, and an auth file with the
credentials). Credentials only ever travel in that 0600 file, never on a
command line or in a log.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from devops.registry.server import registry_info
from devops.registry.tokens import (
    namespace,
    pr_namespace,
    run_namespace,
    split_local_registry,
    valid_repository,
)

if TYPE_CHECKING:
    from devops.engines.local.context import StepContext
    from devops.pipeline.config import PublishImageConfig

DEFAULT_REGISTRY = "docker.io"   # Rancher's DefaultRegistry (index.docker.io)
DEFAULT_TAG = "latest"


def buildah_storage_args(data_dir: Path | str, containers_root: Path | None = None) -> list[str]:
    """Global buildah flags: persistent vfs storage under the data dir, the SAME storage
    the container runtime uses (runtimes/container.py), so base images and layers are
    reused across runs, and a later step finds the image just built without a pull."""
    from devops.engines.local.runtimes.container import storage_args

    return storage_args(Path(containers_root) if containers_root else Path(data_dir) / "containers")


def step_containers_root(ctx: StepContext) -> Path:
    root = getattr(ctx.options, "containers_root", None) if ctx.options is not None else None
    return Path(root) if root else Path(ctx.data_dir) / "containers"


def step_storage_args(ctx: StepContext) -> list[str]:
    return buildah_storage_args(ctx.data_dir, step_containers_root(ctx))


def is_registry(segment: str) -> bool:
    """Rancher/Docker rule: the first segment is a registry when it holds `.` or `:` or is localhost."""
    return "." in segment or ":" in segment or segment == "localhost"


def split_image_tag(image: str) -> tuple[str, str, tuple[str, ...]]:
    """`reg:5000/org/app:1,latest` -> ("reg:5000", "org/app", ("1", "latest")).

    Rancher's SplitImageTag, plus comma-separated tags after the colon as
    Rancher's docker plugin read them (`org/app:1,1.${CICD_EXECUTION_SEQUENCE}`).
    No registry -> "" ; no tag -> ("latest",).
    """
    image = image.strip()
    registry = ""
    first, sep, rest = image.partition("/")
    if sep and is_registry(first):
        registry, image = first, rest
    repo, sep, tag_text = image.partition(":")
    tags = tuple(t.strip() for t in tag_text.split(",") if t.strip()) if sep else ()
    return registry, repo, tags or (DEFAULT_TAG,)


@dataclass(frozen=True)
class ImageTarget:
    registry: str          # host[:port]
    repository: str        # org/app
    tags: tuple[str, ...]
    builtin: bool          # the built-in registry (loopback, plain http)

    @property
    def refs(self) -> list[str]:
        return [f"{self.registry}/{self.repository}:{t}" for t in self.tags]


def resolve_target(config: PublishImageConfig, local_registry: str) -> ImageTarget:
    """Where a publishImageConfig pushes (DESIGN §3).

    pushRemote false: the built-in registry (any registry in the tag or the
    `registry` field is ignored, as Rancher did). pushRemote true: the
    `registry` field, else the registry in the tag, else Docker Hub.
    """
    tag_registry, repo, tags = split_image_tag(config.tag)
    if not repo:
        raise ValueError(f"publishImageConfig.tag {config.tag!r} names no repository")
    if not config.push_remote:
        return ImageTarget(local_registry, repo, tags, builtin=True)
    registry = config.registry.strip().removeprefix("https://").removeprefix("http://").rstrip("/")
    registry = registry or tag_registry or DEFAULT_REGISTRY
    if registry == "index.docker.io":
        registry = DEFAULT_REGISTRY
    return ImageTarget(registry, repo, tags, builtin=False)


_PROJECT_ID = re.compile(r"^p-[a-z0-9]{5}$")   # models/ids.py: how Slipway names projects


def builtin_repository(project_id: str, run_ns: str, repository: str) -> str:
    """The built-in registry's repository for a publish tag's `repository` (ValueError: why none).

    As in Rancher, where each project had a registry of its own, the tag
    names an image of the project (`myorg/app`) and Slipway puts it in the
    run's namespace: `<project id>/myorg/app` (`<project id>/pr/<execution>/myorg/app`
    for a pull request). A tag already starting with `<project id>/` is not
    prefixed twice. Refused, before a build is spent: names that are no
    repository name (`../x`, upper case, `a//b`), that start with another
    project's id, and, for trusted runs, names under `<project id>/pr/`
    (pull requests' images). The registry's own rule (tokens.grant) is the
    guard; this says it clearly.
    """
    rest = repository.removeprefix(namespace(project_id))
    first = rest.split("/", 1)[0]
    if _PROJECT_ID.match(first) and first != project_id:
        raise ValueError(f"tag {repository!r} names project {first}'s images: a project pushes only its own "
                         f"(write the image's name without a project id, e.g. tag: myorg/app:1)")
    full = run_ns + rest
    if not valid_repository(full):
        raise ValueError(f"tag {repository!r} is not a valid image name (lowercase letters, digits, "
                         f"separators . _ - between them, components joined by /; no `..`)")
    if run_ns == namespace(project_id) and full.startswith(pr_namespace(project_id)):
        raise ValueError(f"tag {repository!r}: {pr_namespace(project_id)} holds the images of pull requests' "
                         f"runs; a trusted run cannot push there (choose another name)")
    return full


def parse_build_args(text: str) -> list[tuple[str, str]]:
    """PLUGIN_BUILD_ARGS as Rancher's docker plugin read it: `A=1,B=two` (or one per line)."""
    out = []
    for item in text.replace("\n", ",").split(","):
        item = item.strip()
        if not item:
            continue
        name, _, value = item.partition("=")
        out.append((name.strip(), value))
    return out


def registries_conf(insecure: list[str], mirror: str = "") -> str:
    """A containers-registries.conf(5) for one step's buildah.

    `insecure`: registries reached over plain http (the loopback built-in one).
    `mirror`: the project's `registry-mirror` setting, tried first for Docker Hub.
    """
    lines = ['unqualified-search-registries = ["docker.io"]', 'short-name-mode = "permissive"', ""]
    for host in dict.fromkeys(h for h in insecure if h):
        lines += ["[[registry]]", f'location = "{host}"', "insecure = true", ""]
    mirror = mirror.strip().removeprefix("https://").removeprefix("http://").rstrip("/")
    if mirror:
        lines += ["[[registry]]", 'prefix = "docker.io"', 'location = "docker.io"', "",
                  "[[registry.mirror]]", f'location = "{mirror}"',
                  f"insecure = {'true' if is_loopback(mirror) else 'false'}", ""]
    return "\n".join(lines)


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name in {"localhost", "127.0.0.1", "[::1]"} or name.startswith("127.")


def auth_json(auths: dict[str, tuple[str, str]]) -> str:
    """containers-auth.json(5) content for host -> (username, password)."""
    return json.dumps({"auths": {
        host: {"auth": base64.b64encode(f"{u}:{p}".encode()).decode()}
        for host, (u, p) in auths.items() if u or p
    }})


def builtin_address(spec, data_dir: Path | str) -> str:
    """The built-in registry's bare `host:port` for a run ("" when it never ran).

    From the RunSpec's CICD_LOCAL_REGISTRY (the controller's: address plus the
    run's namespace), never a step's own env, which must not choose what the
    step's network relays or where the run's credential goes; else state.json.
    """
    address, _ = split_local_registry(spec.env.get("CICD_LOCAL_REGISTRY", ""))
    if not address:
        info = registry_info(data_dir)
        address = info.address if info is not None else ""
    return address


def step_namespace(ctx: StepContext) -> str:
    """The run's namespace in the built-in registry: `<project id>/` or `<project id>/pr/<execution>/`."""
    return run_namespace(ctx.spec.project_id, ctx.spec.execution, trusted=ctx.spec.trusted)


def project_image_for(spec, data_dir: Path | str, image: str) -> str:
    """For a pull request's run: the project's image behind a name in the run's own namespace
    (`<address>/<project>/pr/<execution>/myorg/base:1` -> `<address>/<project>/myorg/base:1`), "" otherwise.

    `${CICD_LOCAL_REGISTRY}/myorg/base:1` names the run's namespace; an image
    the run did not build there is the project's, which it may pull (never push),
    as it could in Rancher's one registry per project.
    """
    if spec.trusted:
        return ""
    address = builtin_address(spec, data_dir)
    own = f"{address}/{run_namespace(spec.project_id, spec.execution, trusted=False)}"
    if not address or not image.startswith(own):
        return ""
    return f"{address}/{namespace(spec.project_id)}{image[len(own):]}"


def local_registry(ctx: StepContext) -> tuple[str, tuple[str, str] | None]:
    """The built-in registry's bare address and this run's credential for it ("" / None when none).

    The credential is the project's, from the RunSpec (controller/spec.py):
    it reaches `<project id>/...` only (a pull request's pushes only its own
    `<project id>/pr/<execution>/...`). Never Slipway's internal account.
    """
    address = builtin_address(ctx.spec, ctx.data_dir)
    creds = ctx.spec.registry_auth.get(address) if address else None
    return address, creds


def registry_access(ctx: StepContext, *, name: str | None = None) -> dict[str, str]:
    """Write this step's registries.conf and auth file; return the env for its buildah calls.

    Files live in the run dir (private to the execution, outside the
    workspace), the auth file 0600. Covers the built-in registry (insecure,
    its credentials), every project registry credential and the mirror.
    """
    address, creds = local_registry(ctx)
    auths = dict(ctx.spec.registry_auth)
    if address and creds:
        auths[address] = creds
    insecure = [address] + [h for h in auths if is_loopback(h)]
    directory = Path(ctx.run_dir) / "containers"
    directory.mkdir(parents=True, exist_ok=True)
    stem = name or f"{ctx.stage}-{ctx.step}"
    conf = directory / f"registries-{stem}.conf"
    conf.write_text(registries_conf(insecure, ctx.spec.settings.get("registry-mirror", "")))
    auth = directory / f"auth-{stem}.json"
    fd = os.open(auth, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(auth_json(auths))
    return {"CONTAINERS_REGISTRIES_CONF": str(conf), "REGISTRY_AUTH_FILE": str(auth)}


# --- whole-build reuse ------------------------------------------------------------
#
# `buildah bud --layers` with every layer cached still costs ~0.2-0.3 s per
# Dockerfile step with the vfs driver (each cached step is checked out as a
# working container, a full copy). When NOTHING the build reads has changed
# (Dockerfile, every byte of the build context, build args, the base images'
# IDs) the result is, by the layer cache's own rules, the image the last
# such build produced; publish steps then tag that image instead of running
# bud. Anything uncertain (FROM with variables, ADD of a URL) means: no
# fingerprint, run bud as usual.

def _instructions(text: str) -> list[list[str]]:
    """Dockerfile instructions as word lists (continuation lines joined, comments dropped)."""
    out: list[list[str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip():
            out.append(current.split())
        current = ""
    if current.strip():
        out.append(current.split())
    return out


def _build_inputs(text: str) -> tuple[list[str], list[str]] | None:
    """(base images, context paths that COPY/ADD read), or None when not knowable statically."""
    images: list[str] = []
    sources: list[str] = []
    stages: set[str] = set()
    for words in _instructions(text):
        op = words[0].upper()
        rest = words[1:]
        if op == "FROM":
            args = [w for w in rest if not w.startswith("--")]
            if not args or "$" in args[0]:
                return None
            if args[0].lower() not in stages and args[0] != "scratch":
                images.append(args[0])
            if len(args) >= 3 and args[1].upper() == "AS":
                stages.add(args[2].lower())
        elif op in ("COPY", "ADD"):
            if any(w.startswith("--from") for w in rest):
                continue  # from another stage: covered by that stage's own inputs
            args = [w for w in rest if not w.startswith("--")]
            if not args or args[0].startswith("[") or any(w.startswith("<<") for w in args):
                return None  # JSON form or heredoc: keep it simple, run bud
            srcs = args[:-1]
            if any("$" in w or "://" in w for w in srcs):
                return None  # variables, or remote content that can change on its own
            sources.extend(srcs)
        elif op == "ONBUILD":
            return None
    return images, sources


def _hash_path(h, root: Path, path: Path) -> None:
    entries = [path] if not path.is_dir() or path.is_symlink() else []
    if path.is_dir() and not path.is_symlink():
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            entries.extend(Path(dirpath) / n for n in sorted(filenames))
            entries.extend(Path(dirpath) / d for d in dirnames if os.path.islink(os.path.join(dirpath, d)))
    for p in entries:
        st = p.lstat()
        h.update(f"file\0{p.relative_to(root).as_posix()}\0{st.st_mode:o}\0".encode())
        if p.is_symlink():
            h.update(os.readlink(p).encode())
        elif p.is_file():
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)


def build_fingerprint(dockerfile: Path, context_dir: Path, build_args: list[tuple[str, str]],
                      image_id: Callable[[str], str | None]) -> str | None:
    """A digest of everything a build reads, or None when it cannot be known safely.

    Reads: the Dockerfile, the base images' IDs (`image_id(ref)` resolves a
    ref in local storage; None = not there), the build args, and every
    context file a COPY/ADD names (more than buildah reads when
    .dockerignore excludes some: a needless rebuild, never a wrong reuse).
    """
    import glob

    text = dockerfile.read_text(errors="replace")
    inputs = _build_inputs(text)
    if inputs is None:
        return None
    bases, sources = inputs
    h = hashlib.sha256()
    h.update(b"dockerfile\0" + text.encode() + b"\0")
    for ref in bases:
        iid = image_id(ref)
        if not iid:
            return None
        h.update(f"from\0{ref}\0{iid}\0".encode())
    for name, value in build_args:
        h.update(f"arg\0{name}\0{value}\0".encode())
    root = Path(context_dir).resolve()
    for src in sources:
        h.update(f"src\0{src}\0".encode())
        matches = sorted(glob.glob(str(root / src.lstrip("/")))) if any(c in src for c in "*?[") \
            else [str(root / src.lstrip("/"))]
        for m in matches:
            path = Path(m)
            if not path.exists() and not path.is_symlink():
                return None  # bud will fail and say why
            resolved = path.resolve()
            if resolved != root and root not in resolved.parents:
                return None
            _hash_path(h, root, path)
    return h.hexdigest()


def fingerprint_file(storage_root: Path, fingerprint: str) -> Path:
    return Path(storage_root) / "fingerprints" / fingerprint
