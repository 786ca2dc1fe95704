"""Reading what a run executes: the commit and its validated pipeline file."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from devops.controller.actions.errors import PipelineFileInvalid, RepositoryError, problem_is_error
from devops.models import Pipeline
from devops.pipeline.config import PipelineConfig
from devops.scm import git


@dataclass(frozen=True)
class Source:
    """What a run executes: the commit and its pipeline config."""

    branch: str
    commit: str
    ref: str
    message: str
    author: str
    author_email: str
    config: PipelineConfig
    config_text: str
    filename: str


def git_auth_of(pipeline: Pipeline) -> git.Auth:
    cred = pipeline.credential
    if cred is None:
        return git.NO_AUTH
    return git.Auth(token=cred.access_token or "", username=cred.git_username(),
                    ssh_private_key=cred.ssh_private_key or "")


def parse_config(text: str, filename: str) -> tuple[PipelineConfig, list[Any]]:
    """Parse and validate; raise PipelineFileInvalid with every problem. Returns warnings too."""
    from devops.pipeline import load

    result = load(text, filename=filename)
    problems = list(getattr(result, "problems", []) or [])
    errors = [p for p in problems if problem_is_error(p)]
    if result.config is None or errors:
        raise PipelineFileInvalid(filename, errors or problems, "" if problems else "invalid pipeline file")
    return result.config, problems


def read_source(
    pipeline: Pipeline, *, branch: str | None, commit: str = "", ref: str = "",
    config_text: str | None = None, config_filename: str = "",
) -> Source:
    """Fetch the mirror, resolve the commit, read and validate the pipeline file."""
    from devops.pipeline import PIPELINE_FILENAMES
    from devops.pipeline.problems import ERROR, Problem
    from devops.pipeline.yamltree import MAX_BYTES

    try:
        mirror = git.update_mirror(settings.DATA_DIR, pipeline.repository_url, git_auth_of(pipeline))
        named = bool(branch)  # a name the caller chose may be a tag or a commit id
        if not branch:
            if ref.startswith("refs/heads/"):
                branch = ref[len("refs/heads/"):]
            else:
                branch = pipeline.default_branch if git.branch_exists(mirror, pipeline.default_branch) \
                    else git.default_branch(mirror)
        if not commit:
            commit = git.resolve_commit(mirror, ref or branch)
        else:
            commit = git.resolve_commit(mirror, commit)
        info = git.commit_info(mirror, commit)
        if not ref:
            ref = _ref_named(mirror, branch) if named else f"refs/heads/{branch}"
        if config_text is None and (found := _provider_file(pipeline, commit, MAX_BYTES)) is not None:
            filename, config_text = found  # a provider repository: its contents API, at this commit
        if config_text is None:
            filename = git.find_file(mirror, commit, PIPELINE_FILENAMES)
            if filename is None:
                raise PipelineFileInvalid(
                    PIPELINE_FILENAMES[0], [],
                    f"no pipeline file ({', '.join(PIPELINE_FILENAMES)}) at {branch}@{commit[:12]}",
                )
            config_text = git.read_file(mirror, commit, filename, limit=MAX_BYTES).decode("utf-8", errors="replace")
        else:
            filename = config_filename or PIPELINE_FILENAMES[0]
    except git.FileTooLarge as exc:
        # Refused with lint's own problem (yamltree.compose), before a byte is read.
        message = f"the file is {exc.size} bytes; the limit is {MAX_BYTES} bytes (1 MiB)"
        raise PipelineFileInvalid(exc.path, [Problem("", 1, 1, ERROR, message)]) from None
    except git.GitError as exc:
        raise RepositoryError(str(exc)) from None
    config, _warnings = parse_config(config_text, filename)
    return Source(branch=branch, commit=commit, ref=ref, message=info.message,
                  author=info.author, author_email=info.author_email, config=config,
                  config_text=config_text, filename=filename)


def _provider_file(pipeline: Pipeline, commit: str, limit: int) -> tuple[str, str] | None:
    """The pipeline file through the provider's contents API (controller/scmcreds.py); None for generic Git."""
    from devops.controller import scmcreds
    from devops.pipeline import PIPELINE_FILENAMES
    from devops.scm import http

    try:
        found = scmcreds.pipeline_file(pipeline, commit, PIPELINE_FILENAMES, limit)
    except (http.ProviderError, scmcreds.NotConnected) as exc:
        raise RepositoryError(f"the provider's contents API: {exc}") from None
    if found is None:
        return None
    name, body = found
    return name, body.decode("utf-8", errors="replace")


def _ref_named(mirror, name: str) -> str:
    """The full ref a run of `name` means: its branch, else its tag, else "" (a commit id).

    A manual run may name a tag or a commit; CICD_GIT_REF / CICD_GIT_TAG must
    say so instead of pretending `refs/heads/<name>`.
    """
    if re.fullmatch(r"[0-9a-f]{7,64}", name) and git.resolve_commit(mirror, name).startswith(name):
        return ""  # resolve_commit took it as a commit id first
    for full in (f"refs/heads/{name}", f"refs/tags/{name}"):
        if git.run_git(["rev-parse", "--verify", "-q", full], cwd=mirror, check=False).returncode == 0:
            return full
    return ""


