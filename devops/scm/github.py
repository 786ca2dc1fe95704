"""GitHub and GitHub Enterprise Server: repositories, webhooks, contents, commit statuses (REST v3).

Request bodies follow GitHub's OpenAPI description (tests/scm check each one
against it). GitHub's OAuth tokens do not expire, so there is no refresh.
"""
from __future__ import annotations

import base64
from urllib.parse import quote

from devops.scm.base import STATUS_CONTEXT, App, FileChange, HeadMoved, Provider, RefExists, Repo
from devops.scm.http import NotFound, ProviderError


class GitHubProvider(Provider):
    name = "github"
    default_web = "https://github.com"
    scopes = (("repo", "list private repositories, read the pipeline file and set commit statuses"),
              ("admin:repo_hook", "create the push / pull-request webhook and delete it with the pipeline"))

    @classmethod
    def api_base(cls, app: App) -> str:
        return f"https://{app.hostname}/api/v3" if app.hostname else "https://api.github.com"

    def __init__(self, app: App, token: str) -> None:
        super().__init__(app, token)
        self.client.accept = "application/vnd.github+json"

    def list_repos(self) -> list[Repo]:
        params = {"per_page": "100", "sort": "full_name", "visibility": "all",
                  "affiliation": "owner,collaborator,organization_member"}
        return [repo_of(r) for r in self.client.pages("/user/repos", params=params) if isinstance(r, dict)]

    def create_hook(self, repo: Repo, url: str, secret: str) -> str:
        body = {"name": "web", "active": True, "events": ["push", "pull_request"],
                "config": {"url": url, "content_type": "json", "secret": secret, "insecure_ssl": "0"}}
        answer = self.client.request("POST", f"/repos/{repo.full_name}/hooks", json_body=body).json()
        return str(answer["id"])

    def delete_hook(self, repo: Repo, hook_id: str) -> None:
        self.client.delete_if_present(f"/repos/{repo.full_name}/hooks/{quote(hook_id, safe='')}")

    def read_file(self, repo: Repo, path: str, commit: str, limit: int) -> bytes | None:
        return self.client.file_or_none(f"/repos/{repo.full_name}/contents/{quote(path)}", path, limit,
                                        params={"ref": commit}, accept="application/vnd.github.raw")

    def set_status(self, repo: Repo, commit: str, state: str, target_url: str, description: str) -> None:
        body = {"state": state, "target_url": target_url, "description": description[:140],
                "context": STATUS_CONTEXT}
        self.client.request("POST", f"/repos/{repo.full_name}/statuses/{commit}", json_body=body)

    def branch_head(self, repo: Repo, branch: str) -> str | None:
        # /git/ref/ (singular) matches the ref exactly; /git/refs/ would list prefix matches.
        try:
            body = self.client.get_json(f"/repos/{repo.full_name}/git/ref/heads/{quote(branch)}")
        except NotFound:
            return None
        return str((body.get("object") or {}).get("sha") or "") or None

    def _blob_sha(self, repo: Repo, path: str, commit: str) -> str | None:
        try:
            body = self.client.get_json(f"/repos/{repo.full_name}/contents/{quote(path)}", params={"ref": commit})
        except NotFound:
            return None
        if not isinstance(body, dict) or body.get("type") != "file":
            raise ProviderError(f"{path} is not a file in the repository")
        return str(body["sha"])

    def commit_file(self, repo: Repo, change: FileChange) -> str:
        """PUT /contents/{path}: a compare-and-swap on the blob (`sha`), so the head is checked first.

        The contents API commits on the branch's head of the moment; the check
        before it narrows the window a concurrent push of ANOTHER file could use
        to an instant (a push of the same file is refused by GitHub: 409).
        """
        self.check_start(repo, change)
        if change.new_branch is not None:
            try:
                self.client.request("POST", f"/repos/{repo.full_name}/git/refs",
                                    json_body={"ref": f"refs/heads/{change.new_branch}", "sha": change.expected_head})
            except ProviderError as exc:
                if exc.status == 422:  # "Reference already exists"
                    raise RefExists(f"branch {change.new_branch} already exists", 422) from None
                raise
        blob = self._blob_sha(repo, change.path, change.expected_head)
        person = {"name": change.author_name, "email": change.author_email}
        body = {"message": change.message, "content": base64.b64encode(change.content).decode("ascii"),
                "branch": change.target, "committer": person, "author": person}
        if blob is not None:
            body["sha"] = blob
        try:
            answer = self.client.request("PUT", f"/repos/{repo.full_name}/contents/{quote(change.path)}",
                                         json_body=body).json()
        except ProviderError as exc:
            if change.new_branch is not None:  # no half-made save: the branch goes with the refused write
                try:
                    self.client.request("DELETE", f"/repos/{repo.full_name}/git/refs/heads/{quote(change.new_branch)}")
                except ProviderError:
                    pass
            if exc.status in (409, 422):  # the blob sha is no longer the file's: someone changed it
                try:
                    actual = self.branch_head(repo, change.target)
                except ProviderError:
                    actual = None
                raise HeadMoved(f"{change.path} changed on {change.target} since it was opened",
                                actual, exc.status) from None
            raise
        return str(answer["commit"]["sha"])


def repo_of(r: dict) -> Repo:
    return Repo(external_id=str(r.get("id", "")), full_name=str(r.get("full_name", "")),
                clone_url=str(r.get("clone_url", "")), html_url=str(r.get("html_url", "")),
                default_branch=str(r.get("default_branch") or ""), private=bool(r.get("private")),
                language=str(r.get("language") or ""),
                permissions={k: bool(v) for k, v in (r.get("permissions") or {}).items()})
