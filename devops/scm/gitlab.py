"""GitLab (gitlab.com and self-hosted): projects, project hooks, repository files, commit statuses (API v4).

GitLab's OAuth access tokens expire after two hours, and a refresh answers a
new pair while invalidating the old one: the caller must store both before
using either (devops/controller/scmcreds.py does so under a row lock).
"""
from __future__ import annotations

from urllib.parse import quote

from devops.scm.base import STATUS_CONTEXT, App, FileChange, Provider, Repo, Token
from devops.scm.http import Client, NotFound, ProviderError

# Slipway's commit-status words -> GitLab's (`failed`, not `failure`; no `error`).
GITLAB_STATE = {"pending": "running", "success": "success", "failure": "failed", "error": "canceled"}


class GitLabProvider(Provider):
    name = "gitlab"
    default_web = "https://gitlab.com"
    scopes = (("api", "list projects, read the pipeline file, create/delete the project hook, set commit statuses"),)
    expiring_tokens = True

    @classmethod
    def api_base(cls, app: App) -> str:
        return cls.web_base(app) + "/api/v4"

    @classmethod
    def refresh(cls, app: App, refresh_token: str) -> Token:
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": app.client_id,
                "client_secret": app.client_secret, "redirect_uri": app.redirect_uri}
        return Token.from_oauth(Client(cls.web_base(app), allow_private=app.allow_private).request(
            "POST", "/oauth/token", data=data).json())

    def list_repos(self) -> list[Repo]:
        params = {"membership": "true", "per_page": "100", "order_by": "path", "sort": "asc",
                  "min_access_level": "40"}  # Maintainer: the level that may add a project hook
        return [repo_of(p) for p in self.client.pages("/projects", params=params) if isinstance(p, dict)]

    def create_hook(self, repo: Repo, url: str, secret: str) -> str:
        body = {"url": url, "token": secret, "push_events": True, "tag_push_events": True,
                "merge_requests_events": True, "enable_ssl_verification": True}
        return str(self.client.request("POST", f"/projects/{repo.path_id}/hooks", json_body=body).json()["id"])

    def delete_hook(self, repo: Repo, hook_id: str) -> None:
        self.client.delete_if_present(f"/projects/{repo.path_id}/hooks/{quote(hook_id, safe='')}")

    def read_file(self, repo: Repo, path: str, commit: str, limit: int) -> bytes | None:
        return self.client.file_or_none(f"/projects/{repo.path_id}/repository/files/{quote(path, safe='')}/raw",
                                        path, limit, params={"ref": commit})

    def set_status(self, repo: Repo, commit: str, state: str, target_url: str, description: str) -> None:
        body = {"state": GITLAB_STATE[state], "target_url": target_url, "description": description[:255],
                "name": STATUS_CONTEXT}
        self.client.request("POST", f"/projects/{repo.path_id}/statuses/{commit}", json_body=body)

    def branch_head(self, repo: Repo, branch: str) -> str | None:
        try:
            body = self.client.get_json(f"/projects/{repo.path_id}/repository/branches/{quote(branch, safe='')}")
        except NotFound:
            return None
        return str((body.get("commit") or {}).get("id") or "") or None

    def _file_last_commit(self, repo: Repo, path: str, commit: str) -> str | None:
        """The last commit that changed `path` as of `commit` (the files API's `last_commit_id`), None: no file."""
        try:
            reply = self.client.request("HEAD", f"/projects/{repo.path_id}/repository/files/{quote(path, safe='')}",
                                        params={"ref": commit})
        except NotFound:
            return None
        return reply.headers.get("x-gitlab-last-commit-id") or None

    def commit_file(self, repo: Repo, change: FileChange) -> str:
        """POST /repository/commits with one action.

        `last_commit_id` is the last commit that changed the file as of
        expected_head: GitLab refuses the action (400) when the file changed
        on the branch since — the stale-write check on GitLab's side.
        """
        self.check_start(repo, change)
        last = self._file_last_commit(repo, change.path, change.expected_head)
        action = {"action": "create" if last is None else "update", "file_path": change.path,
                  "content": change.content.decode("utf-8"), "encoding": "text"}
        if last is not None:
            action["last_commit_id"] = last
        body = {"branch": change.target, "commit_message": change.message, "actions": [action],
                "author_name": change.author_name, "author_email": change.author_email}
        if change.new_branch is not None:
            body["start_sha"] = change.expected_head  # exactly the opened commit, not the branch's head now
        try:
            answer = self.client.request("POST", f"/projects/{repo.path_id}/repository/commits",
                                         json_body=body).json()
        except ProviderError as exc:
            if isinstance(exc, (NotFound,)) or exc.status not in (400, 409):
                raise
            raise self.refused(repo, change, exc) from None
        return str(answer["id"])


def repo_of(p: dict) -> Repo:
    perms = p.get("permissions") or {}
    level = max([(perms.get(k) or {}).get("access_level") or 0 for k in ("project_access", "group_access")] or [0])
    return Repo(external_id=str(p.get("id", "")), api_id=str(p.get("id", "")),
                full_name=str(p.get("path_with_namespace", "")), clone_url=str(p.get("http_url_to_repo", "")),
                html_url=str(p.get("web_url", "")), default_branch=str(p.get("default_branch") or ""),
                private=p.get("visibility") != "public", permissions={"access_level": level})
