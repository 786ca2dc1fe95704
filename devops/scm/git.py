"""Git helpers for any repository: local path, file://, https (token), ssh (key).

No Django here: the controller, triggers and the local engine's runner may
all call these functions.

Mirrors. Every repository Slipway runs gets one bare mirror under
`<data_dir>/mirrors/` (see `mirror_path`). The controller fetches it on each
trigger (`update_mirror`), then resolves the branch and reads the pipeline
file from it without a working tree. **For the local engine's clone step:**
`mirror_path(data_dir, spec.repository_url)` holds the execution's commit
once an execution exists, so the runner can
`git clone --no-checkout --shared <mirror> <workspace>` (or `--reference`
it) and check out `spec.commit` without touching the network. A fetch
holds `<mirror>.lock` (fcntl) so concurrent triggers do not corrupt it;
readers need no lock (git's object store is append-only).

Secrets. A token never appears in argv, the mirror's config or an error
message: it goes to git through `GIT_CONFIG_*` environment variables
(`http.extraHeader`), an SSH key through a 0600 file in a private temporary
directory named by `GIT_SSH_COMMAND`, both deleted afterwards; `GitError`
messages are scrubbed of the token.
"""
from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import re
import shlex
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

GIT_TIMEOUT = 120  # seconds; a fetch of a huge repository over a slow link


class GitError(Exception):
    """A git command failed; the message is safe to show (no credentials)."""


@dataclass(frozen=True)
class Auth:
    """Credentials for a remote. Values are secrets: never log them.

    The engines' `GitAuth` (devops/engines/base.py) is this class: one shape
    of git credentials from the credential row to the clone.
    """

    token: str = field(default="", repr=False)  # repr: a traceback's locals never show a secret
    username: str = ""
    ssh_private_key: str = field(default="", repr=False)


NO_AUTH = Auth()


def credential_env(auth: Auth, key_dir: Path) -> dict[str, str]:
    """GIT_* variables that carry `auth` to git, never through argv or a config file.

    The token travels as an `http.extraHeader` in GIT_CONFIG_* variables
    (argv is visible in `ps`); an SSH key is written 0600 into `key_dir`
    (which the caller owns and removes) and used through GIT_SSH_COMMAND.
    """
    env: dict[str, str] = {}
    if auth.token:
        user = auth.username or "x-access-token"
        basic = base64.b64encode(f"{user}:{auth.token}".encode()).decode()
        env.update(
            GIT_CONFIG_COUNT="1",
            GIT_CONFIG_KEY_0="http.extraHeader",
            GIT_CONFIG_VALUE_0=f"Authorization: Basic {basic}",
        )
    if auth.ssh_private_key:
        key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = key_dir / "id"
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            text = auth.ssh_private_key
            f.write(text if text.endswith("\n") else text + "\n")
        env["GIT_SSH_COMMAND"] = (
            f"ssh -i {shlex.quote(str(key))} -o IdentitiesOnly=yes -o BatchMode=yes "
            f"-o StrictHostKeyChecking=accept-new "
            f"-o UserKnownHostsFile={shlex.quote(str(key_dir / 'known_hosts'))}"
        )
    return env


def is_remote(url: str) -> bool:
    """True for URLs git reaches over a network transport (https, ssh, git)."""
    if url.startswith("file://"):
        return False
    # scheme://... or scp-like user@host:path
    return bool(re.match(r"^[a-z][a-z0-9+.-]*://", url) or re.match(r"^[\w.-]+@[\w.-]+:", url))


CREDENTIALS_IN_URL = ("holds credentials (user:token@, or ?token=...): they would be shown to every project member, "
                      "printed in clone logs and put in CICD_GIT_URL; store a source code credential "
                      "for the pipeline instead and use the URL without them")


def embedded_credentials(url: str) -> bool:
    """True when `url` carries a password, (http/https) any user part, or a query/fragment
    parameter named like a secret (`?private_token=`, `?access_token=`).

    `https://user:token@host/repo.git` and `https://token@host/repo.git` both
    put a secret in the URL; `ssh://git@host/repo` and scp-like
    `git@host:path` name an account, not a secret, and stay valid.
    """
    if not re.match(r"^[a-z][a-z0-9+.-]*://", url, re.IGNORECASE):
        return False  # scp-like or a local path: its user part is an account name
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if _SECRET_QUERY.search(f"{parts.query}&{parts.fragment}"):
        return True  # https://host/repo.git?private_token=... (GitLab), ?access_token=...
    if "@" not in parts.netloc:
        return False
    userinfo = parts.netloc.rpartition("@")[0]
    return ":" in userinfo or parts.scheme.lower() in ("http", "https")


# A query or fragment parameter whose name says it carries a secret.
_SECRET_QUERY = re.compile(r"(?:^|[&;])[^=&;]*(?:token|key|secret|pass|auth|sig|cred)[^=&;]*=[^&;]",
                           re.IGNORECASE)


def normalise_url(repo: str) -> str:
    """A repository reference as stored on a Pipeline: local paths become absolute."""
    if is_remote(repo) or repo.startswith("file://"):
        return repo
    return str(Path(repo).expanduser().resolve())


def mirror_path(data_dir: str | os.PathLike, url: str) -> Path:
    """The bare mirror of `url`: `<data_dir>/mirrors/<name>-<hash>.git`.

    Stable for a URL (the local engine relies on it to clone from the mirror).
    """
    name = re.sub(r"[^A-Za-z0-9._-]", "_", url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git"))[:40]
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return Path(data_dir) / "mirrors" / f"{name or 'repo'}-{digest}.git"


@contextlib.contextmanager
def git_env(auth: Auth = NO_AUTH, url: str = "") -> Iterator[dict[str, str]]:
    """The environment for a git command reaching `url` with `auth`.

    Never prompts (GIT_TERMINAL_PROMPT=0). The token travels as an
    `http.extraHeader` in GIT_CONFIG_* variables: not in argv (visible in
    `ps`) and not written to any config file.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS="/bin/false",
        SSH_ASKPASS="/bin/false",
        LC_ALL="C",
        # A user's global config (url.insteadOf, hooks, credential helpers)
        # must not change what Slipway fetches.
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
    )
    if auth.ssh_private_key:
        with tempfile.TemporaryDirectory(prefix="slipway-ssh-") as tmp:
            env.update(credential_env(auth, Path(tmp)))
            yield env
        return
    env.update(credential_env(auth, Path(os.devnull)))  # a token needs no key dir
    yield env


def scrub(text: str, auth: Auth) -> str:
    for secret in (auth.token, auth.ssh_private_key):
        if secret:
            text = text.replace(secret, "***")
    return text


def run_git(
    args: Sequence[str],
    *,
    cwd: str | os.PathLike | None = None,
    auth: Auth = NO_AUTH,
    check: bool = True,
    timeout: float = GIT_TIMEOUT,
) -> subprocess.CompletedProcess[bytes]:
    """Run `git args...`; raise GitError (scrubbed) on failure when `check`."""
    with git_env(auth) as env:
        try:
            proc = subprocess.run(
                ["git", *args], cwd=cwd, env=env, capture_output=True, timeout=timeout,
                stdin=subprocess.DEVNULL, check=False,
            )
        except subprocess.TimeoutExpired:
            raise GitError(f"git {args[0]} timed out after {timeout:.0f}s") from None
        except FileNotFoundError:
            raise GitError("git is not installed") from None
    if check and proc.returncode != 0:
        err = scrub(proc.stderr.decode(errors="replace").strip(), auth)
        raise GitError(f"git {args[0]} failed: {err or 'exit code ' + str(proc.returncode)}")
    return proc


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(str(path) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def update_mirror(data_dir: str | os.PathLike, url: str, auth: Auth = NO_AUTH) -> Path:
    """Create or fetch the bare mirror of `url`; returns its path.

    Fetches every branch and tag (`+refs/*:refs/*`, pruned), so any commit a
    trigger names is present afterwards.
    """
    mirror = mirror_path(data_dir, url)
    source = fetch_source(url)
    with _locked(mirror):
        if not (mirror / "HEAD").exists():
            tmp = mirror.with_name(mirror.name + ".tmp")
            if tmp.exists():
                import shutil

                shutil.rmtree(tmp)
            run_git(["init", "--bare", "-q", str(tmp)])
            # The URL is stored without credentials (auth comes from the env).
            run_git(["config", "remote.origin.url", source], cwd=tmp)
            run_git(["config", "remote.origin.fetch", "+refs/*:refs/*"], cwd=tmp)
            run_git(["config", "remote.origin.mirror", "true"], cwd=tmp)
            run_git(["config", "gc.auto", "0"], cwd=tmp)
            _fetch(tmp, auth)
            _remember_default_branch(tmp, auth)
            os.replace(tmp, mirror)
        else:
            _fetch(mirror, auth)
    return mirror


def _fetch(mirror: Path, auth: Auth) -> None:
    run_git(["fetch", "--prune", "--quiet", "--no-tags", "origin"], cwd=mirror, auth=auth)


def _remember_default_branch(mirror: Path, auth: Auth) -> None:
    """Point the mirror's HEAD at the remote's default branch (once, when the mirror is made:
    a second network round trip on every trigger would cost more than it tells)."""
    proc = run_git(["ls-remote", "--symref", "origin", "HEAD"], cwd=mirror, auth=auth, check=False)
    m = re.search(rb"^ref: (refs/heads/\S+)\s+HEAD", proc.stdout, re.MULTILINE)
    if m:
        run_git(["symbolic-ref", "HEAD", m.group(1).decode()], cwd=mirror)


def fetch_source(url: str) -> str:
    if is_remote(url) or url.startswith("file://"):
        return url
    path = Path(url)
    if not path.exists():
        raise GitError(f"repository {url} does not exist")
    return str(path.resolve())


def default_branch(mirror: str | os.PathLike) -> str:
    """The remote's default branch (its HEAD), else "master"."""
    proc = run_git(["symbolic-ref", "--short", "HEAD"], cwd=mirror, check=False)
    name = proc.stdout.decode().strip()
    if proc.returncode == 0 and name and branch_exists(mirror, name):
        return name
    proc = run_git(["for-each-ref", "--format=%(refname:short)", "--count=1", "refs/heads/"], cwd=mirror)
    return proc.stdout.decode().strip() or "master"


def branch_exists(mirror: str | os.PathLike, branch: str) -> bool:
    return run_git(["rev-parse", "--verify", "-q", f"refs/heads/{branch}"], cwd=mirror, check=False).returncode == 0


def resolve_commit(mirror: str | os.PathLike, ref: str) -> str:
    """A branch, tag, full ref or commit id -> the full commit id."""
    if ref.startswith("-"):
        raise GitError(f"no branch, tag or commit {ref!r}")
    candidates = [f"refs/heads/{ref}", f"refs/tags/{ref}", ref]
    if re.fullmatch(r"[0-9a-f]{7,64}", ref):
        candidates.insert(0, candidates.pop())  # most likely a commit id: one git call
    for candidate in candidates:
        proc = run_git(["rev-parse", "--verify", "-q", f"{candidate}^{{commit}}"], cwd=mirror, check=False)
        if proc.returncode == 0:
            return proc.stdout.decode().strip()
    raise GitError(f"no branch, tag or commit {ref!r} in the repository")


@dataclass(frozen=True)
class CommitInfo:
    commit: str
    message: str
    author: str
    author_email: str


def commit_info(mirror: str | os.PathLike, commit: str) -> CommitInfo:
    proc = run_git(["log", "-1", "--format=%H%x00%an%x00%ae%x00%B", commit, "--"], cwd=mirror)
    sha, author, email, message = proc.stdout.decode(errors="replace").split("\x00", 3)
    return CommitInfo(sha, message.strip(), author, email)


class FileTooLarge(GitError):
    """A file over the caller's limit; it was not read."""

    def __init__(self, path: str, size: int, limit: int):
        self.path, self.size, self.limit = path, size, limit
        super().__init__(f"{path} is {size} bytes; the limit is {limit} bytes")


def read_file(mirror: str | os.PathLike, commit: str, path: str, *, limit: int = 1 << 20) -> bytes | None:
    """The bytes of `path` at `commit`, or None when it does not exist.

    The blob's size is asked first (`git cat-file -s`), so a file over `limit`
    raises FileTooLarge without a byte of it being read into memory.
    """
    spec = f"{commit}:{path}"
    size = run_git(["cat-file", "-s", spec], cwd=mirror, check=False)
    if size.returncode != 0:
        return None
    n = int(size.stdout.strip() or 0)
    if n > limit:
        raise FileTooLarge(path, n, limit)
    proc = run_git(["cat-file", "blob", spec], cwd=mirror, check=False)
    return proc.stdout if proc.returncode == 0 else None


def find_file(mirror: str | os.PathLike, commit: str, names: Sequence[str]) -> str | None:
    """The first of `names` present at the top of the tree at `commit`."""
    proc = run_git(["ls-tree", "--name-only", commit, "--", *names], cwd=mirror, check=False)
    if proc.returncode != 0:
        raise GitError(f"cannot read commit {commit[:12]}: {proc.stderr.decode(errors='replace').strip()}")
    present = set(proc.stdout.decode().splitlines())
    return next((n for n in names if n in present), None)
