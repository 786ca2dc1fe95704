"""The pipeline editor's storage: read a branch's pipeline file, commit a new version of it.

Two functions, one interface for every kind of repository:

- `read_file(repo, branch) -> PipelineFile(head, path, text)`: the file the
  editor opens, the one a run of that branch would read: `.devops.yml`, else
  Rancher's names (`devops.pipeline.PIPELINE_FILENAMES`), at the branch head
  of the repository's bare mirror (fetched first, as a run does). `text` is
  None when the branch has no pipeline file (`path` is then `.devops.yml`).
- `commit_file(repo, branch, path, text, message, author_name, author_email,
  expected_head, new_branch=None) -> sha`: one commit whose parent is
  `expected_head` and whose only change is `path` = `text`, on `branch`, or on
  `new_branch` created at it. Never a silent overwrite: when the branch head is
  no longer `expected_head` (someone pushed since the editor opened), or the
  push is refused as not a fast-forward, it raises `BranchMoved`;
  `new_branch` must not exist yet (`BranchExists`).

Which implementation does it is a row of `FILE_STORES` (a `devops.kinds`
table, name = `RepoSpec.provider`): "git" is generic Git (a real `git push`
through the pipeline's credential); "github", "gitlab", "bitbucketcloud" and
"bitbucketserver" are `ProviderFileStore`: the provider's contents API through
the provider module's `branch_head` / `read_file` / `commit_file`
(devops/scm/base.py states that contract), called via `RepoSpec.api` — the
caller's function that runs one provider call with a fresh token
(devops.controller.scmcreds.call). A spec without `api` (a pipeline not
enabled from a provider repository) uses generic Git whatever its provider;
providers without a row use generic Git too.

Credentials travel as in `devops.scm.git`: GIT_CONFIG_* environment variables
or a 0600 key file, never argv, the mirror's config, a log or an error
message. No Django here: callers pass `data_dir` (settings.DATA_DIR).
"""
from __future__ import annotations

import os
import posixpath
import re
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from devops.kinds import Kind, KindTable
from devops.pipeline.files import PIPELINE_FILENAMES
from devops.pipeline.yamltree import MAX_BYTES as MAX_FILE_BYTES
from devops.scm import base, git
from devops.scm.http import ProviderError


class CommitError(git.GitError):
    """The commit cannot be made; the message is safe to show."""


class BranchMoved(CommitError):
    """The branch is no longer at the commit the editor opened: reload, never overwrite."""

    def __init__(self, branch: str, expected: str, actual: str | None):
        self.branch, self.expected, self.actual = branch, expected, actual
        now = f"now at {actual[:12]}" if actual else "gone"
        super().__init__(
            f"branch {branch} moved since the editor opened it (opened at {expected[:12]}, {now}); "
            "reload the file and apply the change again"
        )


class BranchExists(CommitError):
    def __init__(self, branch: str):
        self.branch = branch
        super().__init__(f"branch {branch} already exists; choose another name")


@dataclass(frozen=True)
class RepoSpec:
    """Plain data naming a repository and how to reach it (built from a Pipeline by the caller)."""

    url: str
    auth: git.Auth = git.NO_AUTH
    data_dir: str | os.PathLike = ""  # where the bare mirrors live (settings.DATA_DIR)
    provider: str = "git"             # a FILE_STORES row; unknown names use generic Git
    # Provider repositories: the repository as the provider names it, and
    # api(fn) -> fn(provider client) with a fresh token (None: generic Git).
    scm_repo: base.Repo | None = None
    api: Callable[[Callable[[base.Provider], Any]], Any] | None = None

    def __repr__(self) -> str:  # never show the credential
        return f"RepoSpec(url={self.url!r}, provider={self.provider!r})"


@dataclass(frozen=True)
class PipelineFile:
    head: str          # the branch head commit the file was read at (the editor's expected_head)
    path: str          # the file name in the repository
    text: str | None   # None: the branch has no pipeline file yet


class FileStore(Protocol):
    def read_file(self, repo: RepoSpec, branch: str) -> PipelineFile: ...

    def commit_file(self, repo: RepoSpec, branch: str, path: str, text: str, message: str,
                    author_name: str, author_email: str, expected_head: str,
                    new_branch: str | None = None) -> str: ...


FILE_STORES: KindTable[Kind] = KindTable(
    "pipeline file store",
    Kind("git", "Generic Git (git push)", "devops.scm.commit.GitFileStore"),
    Kind("github", "GitHub contents API", "devops.scm.commit.ProviderFileStore"),
    Kind("gitlab", "GitLab commits API", "devops.scm.commit.ProviderFileStore"),
    Kind("bitbucketcloud", "Bitbucket Cloud src API", "devops.scm.commit.ProviderFileStore"),
    Kind("bitbucketserver", "Bitbucket Server browse API", "devops.scm.commit.ProviderFileStore"),
)


def store_for(repo: RepoSpec) -> FileStore:
    provider_ok = repo.api is not None and repo.scm_repo is not None
    name = repo.provider if repo.provider in FILE_STORES and provider_ok else "git"
    return FILE_STORES.load(name)()


def read_file(repo: RepoSpec, branch: str) -> PipelineFile:
    """The pipeline file of `branch` at its head (see the module docstring)."""
    _check_branch(branch)
    return store_for(repo).read_file(repo, branch)


def commit_file(repo: RepoSpec, branch: str, path: str, text: str, message: str, author_name: str,
                author_email: str, expected_head: str, new_branch: str | None = None) -> str:
    """Commit `text` as `path` on top of `expected_head`; the new commit's sha (see the module docstring)."""
    _check_branch(branch)
    if new_branch is not None:
        _check_branch(new_branch)
    _check_path(path)
    _check_person(author_name, author_email)
    if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", expected_head or ""):
        raise CommitError("expected_head must be the full commit id the editor opened")
    if not message.strip():
        raise CommitError("the commit message is empty")
    if len(text.encode()) > MAX_FILE_BYTES:
        raise CommitError(f"the file is over {MAX_FILE_BYTES} bytes")
    return store_for(repo).commit_file(repo, branch, path, text, message, author_name, author_email,
                                       expected_head, new_branch)


def _check_branch(name: str) -> None:
    ok = (
        isinstance(name, str) and name and not name.startswith(("-", "/")) and not name.endswith((".lock", "/", "."))
        and ".." not in name and "//" not in name and "@{" not in name
        and not re.search(r"[\x00-\x20\x7f~^:?*\[\\]", name)
    )
    if not ok:
        raise CommitError(f"{name!r} is not a valid branch name")


def _check_path(path: str) -> None:
    norm = posixpath.normpath(path or "")
    if (not path or path != norm or norm.startswith(("/", "..")) or "\\" in path
            or ".git" in norm.split("/") or "\x00" in path or "\n" in path):
        raise CommitError(f"{path!r} is not a file path inside the repository")


def _check_person(name: str, email: str) -> None:
    for what, value in (("author name", name), ("author email", email)):
        if not value or not value.strip() or re.search(r"[<>\n\r\x00]", value):
            raise CommitError(f"the {what} {value!r} cannot be written in a commit")


class GitFileStore:
    """Generic Git: the bare mirror (as runs read it) and a real `git push` through the credential."""

    def read_file(self, repo: RepoSpec, branch: str) -> PipelineFile:
        mirror = git.update_mirror(repo.data_dir, repo.url, repo.auth)
        if not git.branch_exists(mirror, branch):
            raise CommitError(f"no branch {branch!r} in the repository")
        head = git.resolve_commit(mirror, f"refs/heads/{branch}")
        name = git.find_file(mirror, head, PIPELINE_FILENAMES)
        if name is None:
            return PipelineFile(head, PIPELINE_FILENAMES[0], None)
        data = git.read_file(mirror, head, name, limit=MAX_FILE_BYTES)
        return PipelineFile(head, name, None if data is None else data.decode("utf-8", errors="replace"))

    def commit_file(self, repo: RepoSpec, branch: str, path: str, text: str, message: str,
                    author_name: str, author_email: str, expected_head: str,
                    new_branch: str | None = None) -> str:
        mirror = git.update_mirror(repo.data_dir, repo.url, repo.auth)
        target = new_branch or branch
        actual = _head(mirror, branch)
        if actual != expected_head:
            raise BranchMoved(branch, expected_head, actual)
        if new_branch is not None and _head(mirror, new_branch) is not None:
            raise BranchExists(new_branch)
        sha = _make_commit(mirror, expected_head, path, text, message, author_name, author_email)
        # The lease makes the push a compare-and-swap on the remote: the ref must
        # still be `expected_head` (a new branch: must not exist), else git refuses.
        lease = "" if new_branch is not None else expected_head
        source = git.fetch_source(repo.url)
        with git.git_env(repo.auth) as env:
            proc = subprocess.run(
                ["git", "push", "--porcelain", f"--force-with-lease=refs/heads/{target}:{lease}",
                 source, f"{sha}:refs/heads/{target}"],
                cwd=mirror, env=env, capture_output=True, timeout=git.GIT_TIMEOUT, stdin=subprocess.DEVNULL,
                check=False,
            )
        if proc.returncode != 0:
            out = git.scrub((proc.stdout + proc.stderr).decode(errors="replace"), repo.auth)
            if re.search(r"stale info|non-fast-forward|fetch first|\[rejected\]", out):
                git.update_mirror(repo.data_dir, repo.url, repo.auth)
                if new_branch is not None:
                    raise BranchExists(new_branch)
                raise BranchMoved(branch, expected_head, _head(mirror, branch))
            lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
            why = [ln for ln in lines if ln.startswith("!") or "rejected" in ln or ln.startswith(("error", "fatal"))]
            raise CommitError("git push failed: " + ("; ".join(why or lines[-1:]) or f"exit code {proc.returncode}"))
        git.update_mirror(repo.data_dir, repo.url, repo.auth)  # runs of the branch see the commit at once
        return sha


def _head(mirror: Path, branch: str) -> str | None:
    proc = git.run_git(["rev-parse", "--verify", "-q", f"refs/heads/{branch}^{{commit}}"], cwd=mirror, check=False)
    return proc.stdout.decode().strip() if proc.returncode == 0 else None


def _make_commit(mirror: Path, parent: str, path: str, text: str, message: str, name: str, email: str) -> str:
    """Write blob, tree and commit into the mirror's object store (no work tree); return the commit id."""

    def run(args: list[str], *, stdin: bytes = b"", env_extra: dict | None = None) -> str:
        with git.git_env() as env:
            env.update(env_extra or {})
            proc = subprocess.run(["git", *args], cwd=mirror, env=env, input=stdin, capture_output=True,
                                  timeout=git.GIT_TIMEOUT, check=False)
        if proc.returncode != 0:
            raise CommitError(f"git {args[0]} failed: {proc.stderr.decode(errors='replace').strip()}")
        return proc.stdout.decode().strip()

    blob = run(["hash-object", "-w", "--stdin"], stdin=text.encode())
    listed = run(["ls-tree", parent, "--", path])
    mode = listed.split()[0] if listed and listed.split()[1] == "blob" else "100644"
    with tempfile.TemporaryDirectory(prefix="slipway-commit-") as tmp:
        index = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        run(["read-tree", parent], env_extra=index)
        run(["update-index", "--add", "--cacheinfo", f"{mode},{blob},{path}"], env_extra=index)
        tree = run(["write-tree"], env_extra=index)
    who = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
           "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email}
    return run(["commit-tree", tree, "-p", parent, "-F", "-"], stdin=message.encode(), env_extra=who)


class ProviderFileStore:
    """A provider's contents API (GitHub, GitLab, Bitbucket Cloud / Server), through `RepoSpec.api`."""

    def _call(self, repo: RepoSpec, fn):
        assert repo.api is not None and repo.scm_repo is not None  # store_for picks this store only then
        try:
            return repo.api(fn)
        except base.HeadMoved:
            raise
        except base.RefExists:
            raise
        except ProviderError as exc:
            # The provider modules' messages carry no header and no query string: safe to show.
            raise CommitError(f"{repo.provider}: {exc}") from None

    def read_file(self, repo: RepoSpec, branch: str) -> PipelineFile:
        r = repo.scm_repo

        def read(p: base.Provider) -> PipelineFile:
            head = p.branch_head(r, branch)
            if head is None:
                raise CommitError(f"no branch {branch!r} in the repository")
            for name in PIPELINE_FILENAMES:
                data = p.read_file(r, name, head, MAX_FILE_BYTES)
                if data is not None:
                    return PipelineFile(head, name, data.decode("utf-8", errors="replace"))
            return PipelineFile(head, PIPELINE_FILENAMES[0], None)

        return self._call(repo, read)

    def commit_file(self, repo: RepoSpec, branch: str, path: str, text: str, message: str,
                    author_name: str, author_email: str, expected_head: str,
                    new_branch: str | None = None) -> str:
        change = base.FileChange(branch=branch, path=path, content=text.encode(), message=message,
                                 author_name=author_name, author_email=author_email,
                                 expected_head=expected_head, new_branch=new_branch)
        try:
            return self._call(repo, lambda p: p.commit_file(repo.scm_repo, change))
        except base.HeadMoved as exc:
            raise BranchMoved(branch, expected_head, exc.actual) from None
        except base.RefExists:
            raise BranchExists(new_branch or branch) from None
