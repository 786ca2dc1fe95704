"""The pipeline editor's actions: open a branch's file, commit an edit, run an edit without committing.

The editor page (devops/web) calls only these; the work is Django-free below
(`devops.pipeline.apply_ops`/`lint_text`, `devops.scm.commit`):

- `open_pipeline_file(pipeline, branch)` -> `EditorFile`: the file a run of
  the branch reads, at the branch head, or the starter pipeline when the
  branch has none (`starter` True). Its `head` is what a save must find.
- `do_commit_pipeline_file(pipeline, user=, branch=, path=, text=, message=,
  expected_head=, new_branch=None)` -> the new commit's sha. Refuses a file
  with lint errors (PipelineFileInvalid); raises `BranchMoved` (the branch is
  no longer at `expected_head`: the page offers to reload), `BranchExists`,
  `CommitError`, RepositoryError (the repository cannot be reached).
- `do_run_edited(pipeline, user=, branch=, text=, filename=)` -> the new
  execution: the YAML runs on the branch at its head as a temporary config
  (`temporary_config`, `config_text` = exactly `text`; the run page's Config
  tab shows it and says so). Same errors as `do_run`.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from devops.controller.actions.errors import PipelineFileInvalid, RepositoryError
from devops.controller.actions.run import do_run
from devops.controller.actions.source import git_auth_of
from devops.models import Pipeline, PipelineExecution
from devops.scm import commit as scm_commit
from devops.scm.git import GitError
from devops.scm.http import ProviderError

BranchMoved = scm_commit.BranchMoved
BranchExists = scm_commit.BranchExists
CommitError = scm_commit.CommitError


@dataclass(frozen=True)
class EditorFile:
    head: str       # the branch head the file was read at (send it back as expected_head)
    path: str       # `.devops.yml`, `.rancher-pipeline.yml`, ... (the file a run reads)
    text: str       # the file's text, or the starter pipeline
    starter: bool   # True: the branch has no pipeline file; saving creates `path`


def repo_spec_of(pipeline: Pipeline) -> scm_commit.RepoSpec:
    """The plain repository spec (URL, the pipeline's credential, the mirrors' data dir).

    A pipeline enabled from a provider repository (its SourceCodeRepository row
    with a credential) gets the provider's name, the repository and `api`:
    every call goes through `scmcreds.call`, which refreshes an expiring token
    first and once more on a 401 — the same path the other provider calls take.
    Any other pipeline is generic Git (a real `git push` through its credential).
    """
    from devops.controller import scmcreds

    cred = pipeline.credential
    provider = (getattr(cred, "source_code_type", "") or "git") if cred is not None else "git"
    row = getattr(pipeline, "scm_repository", None) if pipeline.pk else None
    scm_repo = api = None
    if row is not None and row.credential is not None:
        provider_cred = row.credential
        provider, scm_repo = provider_cred.source_code_type, scmcreds.repo_data(row)

        def api(fn):
            try:
                return scmcreds.call(provider_cred, fn)
            except scmcreds.NotConnected as exc:  # the project's provider app was removed
                raise ProviderError(str(exc)) from None
    return scm_commit.RepoSpec(url=pipeline.repository_url, auth=git_auth_of(pipeline),
                               data_dir=settings.DATA_DIR, provider=provider, scm_repo=scm_repo, api=api)


def open_pipeline_file(pipeline: Pipeline, branch: str) -> EditorFile:
    from devops.pipeline import starter_pipeline

    try:
        found = scm_commit.read_file(repo_spec_of(pipeline), branch)
    except CommitError:
        raise
    except GitError as exc:
        raise RepositoryError(str(exc)) from None
    if found.text is None:
        return EditorFile(found.head, found.path, starter_pipeline(), True)
    return EditorFile(found.head, found.path, found.text, False)


def _author(user) -> tuple[str, str]:
    name = (user.get_full_name() if hasattr(user, "get_full_name") else "") or user.get_username()
    email = getattr(user, "email", "") or f"{user.get_username()}@users.noreply.slipway"
    return name, email


def do_commit_pipeline_file(
    pipeline: Pipeline, *, user, branch: str, path: str, text: str, message: str, expected_head: str,
    new_branch: str | None = None,
) -> str:
    from devops.pipeline import lint_text

    errors = [p for p in lint_text(text) if p.is_error]
    if errors:
        raise PipelineFileInvalid(path, errors)
    name, email = _author(user)
    try:
        return scm_commit.commit_file(repo_spec_of(pipeline), branch, path, text, message, name, email,
                                      expected_head, new_branch)
    except CommitError:
        raise
    except GitError as exc:
        raise RepositoryError(str(exc)) from None


def do_run_edited(pipeline: Pipeline, *, user, branch: str, text: str, filename: str = "") -> PipelineExecution:
    return do_run(pipeline, branch=branch, user=user, config_text=text, config_filename=filename,
                  trigger_type="user")
