"""Interim commit path of the editor (generic Git: a real `git push`), used until `devops.scm.commit` lands.

`views_editor` imports `devops.scm.commit.commit_file` when it exists (the
helper `edcore` owns it: one interface for generic Git and the providers'
contents API) and falls back to this module. Same contract:

    commit_file(pipeline, branch=, base=, path=, text=, message=, author_name=, author_email=,
                new_branch=False) -> the new commit id

The commit is made with plumbing in the pipeline's bare mirror (a blob, a tree
from `base`'s tree with the one file replaced, a commit whose parent is
`base`), then pushed to the repository with the pipeline's credential, without
force: if the branch moved since the editor opened at `base`, the push is not
a fast-forward and is refused (BranchMoved) — never a silent overwrite.
"""
from __future__ import annotations

import os
import subprocess
import tempfile

from django.conf import settings

from devops.scm import git


class CommitError(Exception):
    """The commit could not be made or pushed; the message says why (no credential in it)."""


class BranchMoved(CommitError):
    """The branch's head is not the commit the editor opened."""


def _run(args: list[str], *, cwd, auth: git.Auth = git.NO_AUTH, env: dict | None = None,
         data: bytes | None = None) -> str:
    with git.git_env(auth) as base_env:
        base_env.update(env or {})
        proc = subprocess.run(["git", *args], cwd=cwd, env=base_env, input=data, capture_output=True,
                              timeout=git.GIT_TIMEOUT, check=False)
    if proc.returncode != 0:
        err = git._scrub(proc.stderr.decode(errors="replace").strip(), auth)
        raise CommitError(f"git {args[0]} failed: {err}")
    return proc.stdout.decode().strip()


def commit_file(pipeline, *, branch: str, base: str, path: str, text: str, message: str, author_name: str,
                author_email: str, new_branch: bool = False) -> str:
    from devops.controller.actions.source import git_auth_of

    auth = git_auth_of(pipeline)
    try:
        mirror = git.update_mirror(settings.DATA_DIR, pipeline.repository_url, auth)
    except git.GitError as exc:
        raise CommitError(str(exc)) from None
    if git.run_git(["check-ref-format", f"refs/heads/{branch}"], check=False).returncode != 0 \
            or branch.startswith("-"):
        raise CommitError(f"{branch!r} is not a valid branch name")
    current = git.resolve_commit(mirror, f"refs/heads/{branch}") if git.branch_exists(mirror, branch) else ""
    if new_branch and current:
        raise CommitError(f"branch {branch} already exists")
    if not new_branch and current != base:
        raise BranchMoved(f"its head is now {current[:10] or 'gone'}, not {base[:10] or 'empty'}")
    ident = {"GIT_AUTHOR_NAME": author_name, "GIT_AUTHOR_EMAIL": author_email,
             "GIT_COMMITTER_NAME": author_name, "GIT_COMMITTER_EMAIL": author_email}
    blob = _run(["hash-object", "-w", "--stdin"], cwd=mirror, data=text.encode())
    with tempfile.TemporaryDirectory(prefix="slipway-index-") as tmp:
        index = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
        if base:
            _run(["read-tree", base], cwd=mirror, env=index)
        _run(["update-index", "--add", "--cacheinfo", f"100644,{blob},{path}"], cwd=mirror, env=index)
        tree = _run(["write-tree"], cwd=mirror, env=index)
    parents = ["-p", base] if base else []
    commit = _run(["commit-tree", tree, *parents, "-F", "-"], cwd=mirror, env=ident, data=message.encode())
    # Pushed to the repository's URL, not `origin`: the mirror's origin is a `mirror = true` remote.
    try:
        _run(["push", "--quiet", git._fetch_source(pipeline.repository_url), f"{commit}:refs/heads/{branch}"],
             cwd=mirror, auth=auth)
    except CommitError as exc:
        if "non-fast-forward" in str(exc) or "rejected" in str(exc) or "fetch first" in str(exc):
            raise BranchMoved(f"the repository refused the push ({exc})") from None
        raise
    _run(["update-ref", f"refs/heads/{branch}", commit], cwd=mirror)
    return commit
