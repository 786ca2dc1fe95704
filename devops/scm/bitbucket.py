"""Bitbucket Cloud (API 2.0) and Bitbucket Server / Data Center (REST 1.0 + OAuth 2.0 incoming links).

Bitbucket Cloud takes tokens only as `Authorization: Bearer` (no
`?access_token=`, which Rancher used), its access tokens expire after two
hours and each refresh answers a new refresh token (rotation): the caller
stores the pair before using it. Bitbucket Server's OAuth 2.0 tokens expire
too and refresh the same way.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from devops.scm.base import STATUS_CONTEXT, App, FileChange, Provider, Repo, Token
from devops.scm.http import MAX_PAGES, Client, NotFound, ProviderError

BUILD_STATE = {"pending": "INPROGRESS", "success": "SUCCESSFUL", "failure": "FAILED", "error": "STOPPED"}


class BitbucketCloudProvider(Provider):
    name = "bitbucketcloud"
    default_web = "https://bitbucket.org"
    scopes = (("repository", "list private repositories and read the pipeline file"),
              ("repository:admin", "see which repositories you administer (a webhook needs it)"),
              ("webhook", "create the push / pull-request webhook and delete it with the pipeline"))
    expiring_tokens = True

    @classmethod
    def api_base(cls, app: App) -> str:
        return "https://api.bitbucket.org/2.0"

    @classmethod
    def refresh(cls, app: App, refresh_token: str) -> Token:
        # The client authenticates with HTTP Basic; the answer carries a NEW refresh token.
        reply = Client("https://bitbucket.org").request(
            "POST", "/site/oauth2/access_token", auth=(app.client_id, app.client_secret),
            data={"grant_type": "refresh_token", "refresh_token": refresh_token})
        return Token.from_oauth(reply.json())

    def list_repos(self) -> list[Repo]:
        pages = self.client.pages("/repositories", params={"role": "member", "pagelen": "100", "sort": "full_name"},
                                  items=lambda body: body.get("values") or [])
        return [cloud_repo(r) for r in pages if isinstance(r, dict)]

    def create_hook(self, repo: Repo, url: str, secret: str) -> str:
        body = {"description": "Slipway", "url": url, "active": True, "secret": secret,
                "events": ["repo:push", "pullrequest:created", "pullrequest:updated"]}
        return str(self.client.request("POST", f"/repositories/{repo.full_name}/hooks", json_body=body).json()["uuid"])

    def delete_hook(self, repo: Repo, hook_id: str) -> None:
        self.client.delete_if_present(f"/repositories/{repo.full_name}/hooks/{quote(hook_id, safe='')}")

    def read_file(self, repo: Repo, path: str, commit: str, limit: int) -> bytes | None:
        return self.client.file_or_none(f"/repositories/{repo.full_name}/src/{commit}/{quote(path)}", path, limit)

    def set_status(self, repo: Repo, commit: str, state: str, target_url: str, description: str) -> None:
        body = {"key": STATUS_CONTEXT, "state": BUILD_STATE[state], "name": "Slipway", "url": target_url,
                "description": description[:255]}
        self.client.request("POST", f"/repositories/{repo.full_name}/commit/{commit}/statuses/build",
                            json_body=body)

    def branch_head(self, repo: Repo, branch: str) -> str | None:
        try:
            body = self.client.get_json(f"/repositories/{repo.full_name}/refs/branches/{quote(branch, safe='')}")
        except NotFound:
            return None
        return str((body.get("target") or {}).get("hash") or "") or None

    def commit_file(self, repo: Repo, change: FileChange) -> str:
        """POST /src (form fields): `parents` = expected_head makes Bitbucket assert it is the branch tip (409).

        For a branch that does not exist yet, the same request creates it on top of `parents`.
        """
        self.check_start(repo, change)
        form = {change.path: change.content, "message": change.message,
                "author": f"{change.author_name} <{change.author_email}>",
                "branch": change.target, "parents": change.expected_head}
        try:
            reply = self.client.request("POST", f"/repositories/{repo.full_name}/src", data=form)
        except ProviderError as exc:
            if isinstance(exc, NotFound) or exc.status not in (400, 409):
                raise
            raise self.refused(repo, change, exc) from None
        # 201 with `Location: .../commit/<hash>`; without one, the target branch's head is the commit.
        location = reply.headers.get("location", "").rstrip("/")
        if "/commit/" in location:
            return location.rsplit("/", 1)[-1]
        head = self.branch_head(repo, change.target)
        if not head:
            raise ProviderError(f"{change.target}: Bitbucket answered no commit")
        return head


def cloud_repo(r: dict) -> Repo:
    clone = next((c.get("href", "") for c in (r.get("links") or {}).get("clone") or []
                  if isinstance(c, dict) and c.get("name") == "https"), "")
    if "@" in clone:  # Bitbucket puts the user name in the clone URL; credentials come separately
        clone = "https://" + clone.split("@", 1)[1]
    return Repo(external_id=str(r.get("uuid", "")), full_name=str(r.get("full_name", "")), clone_url=clone,
                html_url=str(((r.get("links") or {}).get("html") or {}).get("href", "")),
                default_branch=str((r.get("mainbranch") or {}).get("name") or ""),
                private=bool(r.get("is_private")), language=str(r.get("language") or ""))


class BitbucketServerProvider(Provider):
    """Bitbucket Server / Data Center 7.20+: OAuth 2.0 incoming application links."""

    name = "bitbucketserver"
    scopes = (("REPO_ADMIN", "list repositories, read the pipeline file and create/delete the webhook"),)
    expiring_tokens = True

    @classmethod
    def web_base(cls, app: App) -> str:
        if not app.hostname:
            raise ProviderError("Bitbucket Server needs its hostname")
        return f"https://{app.hostname}"

    @classmethod
    def api_base(cls, app: App) -> str:
        return cls.web_base(app) + "/rest/api/latest"

    @classmethod
    def refresh(cls, app: App, refresh_token: str) -> Token:
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": app.client_id,
                "client_secret": app.client_secret}
        return Token.from_oauth(Client(cls.web_base(app), allow_private=app.allow_private).request(
            "POST", "/rest/oauth2/latest/token", data=data).json())

    def _paged(self, path: str, params: dict) -> Iterator[Any]:
        # Bitbucket Server pages with isLastPage / nextPageStart, not Link headers.
        start = 0
        for _ in range(MAX_PAGES):
            body = self.client.get_json(path, params={**params, "start": str(start)})
            yield from body.get("values") or []
            if body.get("isLastPage", True) or body.get("nextPageStart") is None:
                return
            start = int(body["nextPageStart"])

    def list_repos(self) -> list[Repo]:
        return [server_repo(r) for r in self._paged("/repos", {"permission": "REPO_ADMIN", "limit": "100"})
                if isinstance(r, dict)]

    def _repo_path(self, repo: Repo) -> str:
        project, slug = repo.full_name.split("/", 1)
        return f"/projects/{quote(project)}/repos/{quote(slug)}"

    def create_hook(self, repo: Repo, url: str, secret: str) -> str:
        body = {"name": "Slipway", "url": url, "active": True, "configuration": {"secret": secret},
                "events": ["repo:refs_changed", "pr:opened", "pr:from_ref_updated"]}
        return str(self.client.request("POST", self._repo_path(repo) + "/webhooks", json_body=body).json()["id"])

    def delete_hook(self, repo: Repo, hook_id: str) -> None:
        self.client.delete_if_present(self._repo_path(repo) + f"/webhooks/{quote(hook_id, safe='')}")

    def read_file(self, repo: Repo, path: str, commit: str, limit: int) -> bytes | None:
        return self.client.file_or_none(self._repo_path(repo) + f"/raw/{quote(path)}", path, limit,
                                        params={"at": commit})

    def set_status(self, repo: Repo, commit: str, state: str, target_url: str, description: str) -> None:
        body = {"key": STATUS_CONTEXT, "state": BUILD_STATE[state] if state != "error" else "FAILED",
                "name": "Slipway", "url": target_url, "description": description[:255]}
        self.client.request("POST", self.web_base(self.app) + f"/rest/build-status/1.0/commits/{commit}",
                            json_body=body)

    def branch_head(self, repo: Repo, branch: str) -> str | None:
        # filterText matches substrings: pick the exact ref among the answers.
        for b in self._paged(self._repo_path(repo) + "/branches", {"filterText": branch, "limit": "100"}):
            if isinstance(b, dict) and b.get("id") == f"refs/heads/{branch}":
                return str(b.get("latestCommit") or "") or None
        return None

    def commit_file(self, repo: Repo, change: FileChange) -> str:
        """PUT /browse/{path} (multipart): `sourceCommitId` = expected_head; Bitbucket refuses (409)
        when the file changed on the branch since. The author is the token's user (the API takes no other).
        """
        self.check_start(repo, change)
        exists = self.read_file(repo, change.path, change.expected_head, 1 << 30) is not None
        fields: dict[str, tuple[None, bytes | str]] = {
            "content": (None, change.content), "message": (None, change.message), "branch": (None, change.target)}
        if exists:
            fields["sourceCommitId"] = (None, change.expected_head)
        if change.new_branch is not None:
            fields["sourceBranch"] = (None, change.branch)  # checked above to be at expected_head
        try:
            answer = self.client.request("PUT", self._repo_path(repo) + f"/browse/{quote(change.path)}",
                                         files=fields).json()
        except ProviderError as exc:
            if isinstance(exc, NotFound) or exc.status not in (400, 409):
                raise
            raise self.refused(repo, change, exc) from None
        return str(answer["id"])


def server_repo(r: dict) -> Repo:
    links = r.get("links") or {}
    clone = next((c.get("href", "") for c in links.get("clone") or []
                  if isinstance(c, dict) and c.get("name") in ("http", "https")), "")
    if "@" in clone:
        scheme, rest = clone.split("://", 1)
        clone = f"{scheme}://{rest.split('@', 1)[1]}"
    project = (r.get("project") or {}).get("key", "")
    html = next((x.get("href", "") for x in links.get("self") or [] if isinstance(x, dict)), "")
    return Repo(external_id=str(r.get("id", "")), full_name=f"{project}/{r.get('slug', '')}", clone_url=clone,
                html_url=html, private=not r.get("public", False))
