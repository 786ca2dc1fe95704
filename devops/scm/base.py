"""Plain data of the provider modules and the contract each one implements.

`PROVIDERS.load(type)` (providers.py) gives the class; the caller (web views,
the controller) turns models into these records and back. Nothing here knows
Django; errors are devops.scm.http's `Unauthorized` / `Transient` / `ProviderError`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import ClassVar

from devops.scm.http import Client, ProviderError

# Slipway's run states -> the four states a commit status may say.
STATUS_OF_RUN = {"Building": "pending", "Waiting": "pending", "Queueing": "pending",
                 "Success": "success", "Failed": "failure", "Denied": "failure",
                 "Aborted": "error", "Skipped": "success"}
STATUS_CONTEXT = "slipway"


@dataclass(frozen=True)
class App:
    """A project's OAuth app for one provider; `hostname` empty = the provider's public service."""

    client_id: str
    client_secret: str = field(default="", repr=False)  # repr: a traceback's locals never show it
    hostname: str = ""
    redirect_uri: str = ""
    allow_private: bool = False  # SLIPWAY_SCM_ALLOW_PRIVATE: may `hostname` be a private address (http.host_problem)

    def web(self, default: str) -> str:
        return f"https://{self.hostname}" if self.hostname else default


@dataclass(frozen=True)
class Token:
    access: str = field(repr=False)
    refresh: str = field(default="", repr=False)
    expires_at: float | None = None  # epoch seconds

    def expires_within(self, seconds: float, now: float | None = None) -> bool:
        return self.expires_at is not None and self.expires_at - (now or time.time()) < seconds

    @classmethod
    def from_oauth(cls, body: dict, now: float | None = None) -> Token:
        """The token endpoint's JSON answer (RFC 6749 §5.1)."""
        if not isinstance(body, dict) or not body.get("access_token"):
            raise ValueError("the token endpoint's answer has no access_token")
        expires = body.get("expires_in")
        at = (now or time.time()) + float(expires) if isinstance(expires, (int, float)) else None
        return cls(access=str(body["access_token"]), refresh=str(body.get("refresh_token") or ""), expires_at=at)


@dataclass(frozen=True)
class Repo:
    """A repository as listed by the provider; `full_name` is what API paths use."""

    external_id: str
    full_name: str
    clone_url: str
    html_url: str = ""
    default_branch: str = ""
    private: bool = False
    language: str = ""
    permissions: dict = field(default_factory=dict)
    api_id: str = ""  # GitLab: the numeric project id its API paths take

    @property
    def path_id(self) -> str:
        return self.api_id or self.full_name


class HeadMoved(ProviderError):
    """A commit refused because the branch (or the file) moved past the head the editor opened."""

    def __init__(self, message: str, actual: str | None = None, status: int = 409) -> None:
        super().__init__(message, status)
        self.actual = actual


class RefExists(ProviderError):
    """The new branch to commit on exists already."""


@dataclass(frozen=True)
class FileChange:
    """One commit of one file: on `branch` (or `new_branch` created at `expected_head`).

    `expected_head` is the branch head the editor opened; the commit's parent
    must be it, else `HeadMoved` (never a silent overwrite).
    """

    branch: str
    path: str
    content: bytes
    message: str
    author_name: str
    author_email: str
    expected_head: str
    new_branch: str | None = None

    @property
    def target(self) -> str:
        return self.new_branch or self.branch

    def __repr__(self) -> str:  # the content may be large; the rest is harmless
        return f"FileChange(branch={self.branch!r}, path={self.path!r}, new_branch={self.new_branch!r})"


class Provider:
    """One provider's API for one user token. Subclasses set the class attributes and methods.

    - `list_repos()`: every repository the token may admin or push to (private included), paged;
    - `create_hook(repo, url, secret)` -> the hook id: push, tag and pull/merge request events;
    - `delete_hook(repo, hook_id)`: a hook already gone is no error;
    - `read_file(repo, path, commit, limit)` -> bytes, or None when the file is not at that commit;
    - `set_status(repo, commit, state, target_url, description)`: state one of pending/success/failure/error;
    - `refresh(app, refresh_token)` (classmethod) -> the new Token (providers with expiring tokens);
    - `branch_head(repo, branch)` -> the branch's head commit id, or None when there is no such branch;
    - `commit_file(repo, change)` -> the new commit's id, made through the contents API: the head
      is checked against `change.expected_head` first (HeadMoved), a new branch must not exist
      (RefExists), and the provider's own refusal of a stale write is HeadMoved too.
    """

    name: ClassVar[str] = ""
    default_web: ClassVar[str] = ""
    scopes: ClassVar[tuple[tuple[str, str], ...]] = ()  # (scope, why Slipway asks for it)
    expiring_tokens: ClassVar[bool] = False

    def __init__(self, app: App, token: str) -> None:
        self.app = app
        self.client = Client(self.api_base(app), authorization=f"Bearer {token}",
                             allow_private=app.allow_private)

    @classmethod
    def api_base(cls, app: App) -> str:
        raise NotImplementedError

    @classmethod
    def web_base(cls, app: App) -> str:
        return app.web(cls.default_web)

    @classmethod
    def refresh(cls, app: App, refresh_token: str) -> Token:
        raise NotImplementedError(f"{cls.name} tokens do not expire")

    def list_repos(self) -> list[Repo]:
        raise NotImplementedError

    def create_hook(self, repo: Repo, url: str, secret: str) -> str:
        raise NotImplementedError

    def delete_hook(self, repo: Repo, hook_id: str) -> None:
        raise NotImplementedError

    def read_file(self, repo: Repo, path: str, commit: str, limit: int) -> bytes | None:
        raise NotImplementedError

    def set_status(self, repo: Repo, commit: str, state: str, target_url: str, description: str) -> None:
        raise NotImplementedError

    def branch_head(self, repo: Repo, branch: str) -> str | None:
        raise NotImplementedError

    def commit_file(self, repo: Repo, change: FileChange) -> str:
        raise NotImplementedError

    # --- shared by the commit_file implementations ---------------------------------

    def check_start(self, repo: Repo, change: FileChange) -> None:
        """HeadMoved unless the branch is at expected_head; RefExists when new_branch exists."""
        actual = self.branch_head(repo, change.branch)
        if actual != change.expected_head:
            raise HeadMoved(f"branch {change.branch} is not at the opened commit", actual)
        if change.new_branch is not None and self.branch_head(repo, change.new_branch) is not None:
            raise RefExists(f"branch {change.new_branch} already exists", 422)

    def refused(self, repo: Repo, change: FileChange, exc: ProviderError) -> ProviderError:
        """What a refused write means: HeadMoved when the branch moved meanwhile, else the refusal itself."""
        try:
            actual = self.branch_head(repo, change.branch)
        except ProviderError:
            return exc
        if actual != change.expected_head:
            return HeadMoved(f"branch {change.branch} moved while committing", actual, exc.status)
        return exc
