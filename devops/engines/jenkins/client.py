"""The Jenkins HTTP calls Slipway makes, on top of python-jenkins.

python-jenkins does the authentication (user + API token as HTTP basic auth),
fetches the CSRF crumb from `/crumbIssuer/api/json` once and adds it to every
POST, and keeps one `requests.Session`, so the session cookie the crumb is
bound to (Jenkins >= 2.176.2) travels with every later request. The calls it
has no method for (`wfapi/describe`, a flow node's progressive log) go through
its `jenkins_request`, so they get the same auth, crumb and session.

Every call raises JenkinsUnreachable (temporary) or JenkinsAuthError
(permanent); `None` means "not there" (404).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import jenkins
import requests

from devops.engines.jenkins.errors import JenkinsAuthError, JenkinsUnreachable


@dataclass(frozen=True)
class LogPiece:
    """One answer of `progressiveText`: the bytes from `start`, the next offset (X-Text-Size), more to come."""

    data: bytes
    next: int
    more: bool


class JenkinsClient:
    def __init__(self, url: str, user: str = "", token: str = "", *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.server = jenkins.Jenkins(self.url, username=user or None, password=token or None, timeout=timeout)

    # -- plumbing -----------------------------------------------------------------------
    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except jenkins.NotFoundException:
            return None
        except jenkins.JenkinsException as exc:
            text = str(exc)
            if "[401]" in text or "[403]" in text or "Unauthorized" in text or "Forbidden" in text:
                raise JenkinsAuthError(f"Jenkins at {self.url} refused the credentials "
                                       "(SLIPWAY_JENKINS_USER / SLIPWAY_JENKINS_TOKEN)") from None
            if "does not exist" in text:
                return None
            raise JenkinsUnreachable(f"Jenkins at {self.url}: {text[:300]}") from None
        except (requests.RequestException, OSError) as exc:
            raise JenkinsUnreachable(f"Jenkins at {self.url} is unreachable: {type(exc).__name__}") from None

    def _get(self, path: str) -> requests.Response | None:
        def go():
            return self.server.jenkins_request(requests.Request("GET", self.url + path))
        return self._call(go)

    @staticmethod
    def job_path(job: str) -> str:
        return "/job/" + quote(job, safe="")

    # -- calls ----------------------------------------------------------------------------
    def whoami(self) -> dict[str, Any]:
        """Who the credentials are (`/me/api/json`): a cheap authenticated call for deploy() and the checks."""
        return self._call(self.server.get_whoami) or {}

    def ensure_job(self, job: str, config_xml: str) -> None:
        """Create the job, or update its config.xml when it exists (idempotent)."""
        if self._call(self.server.job_exists, job):
            self._call(self.server.reconfig_job, job, config_xml)
            return
        try:
            self._call(self.server.create_job, job, config_xml)
        except JenkinsUnreachable as exc:
            if "already exists" not in str(exc):  # another controller created it meanwhile
                raise
            self._call(self.server.reconfig_job, job, config_xml)

    def jobs(self) -> list[dict[str, Any]]:
        """Every top-level job: name, inQueue and its last build's building/timestamp/duration (ms)."""
        r = self._get("/api/json?tree=jobs[name,inQueue,lastBuild[building,timestamp,duration]]")
        return [] if r is None else list(json.loads(r.content).get("jobs") or [])

    def delete_job(self, job: str) -> None:
        """POST /job/X/doDelete (idempotent: a missing job is not an error)."""
        self._call(self.server.delete_job, job)

    def job_info(self, job: str) -> dict[str, Any] | None:
        return self._call(self.server.get_job_info, job)

    def build(self, job: str, parameters: dict[str, str]) -> int:
        """Queue a build; its queue item id. Jenkins folds a second request with the same parameters
        into the item already queued (ParametersAction.shouldSchedule), so two controllers racing
        here still start one build."""
        return int(self._call(self.server.build_job, job, parameters))

    def queue_item(self, queue_id: int) -> dict[str, Any] | None:
        return self._call(self.server.get_queue_item, queue_id)

    def build_info(self, job: str, number: int) -> dict[str, Any] | None:
        return self._call(self.server.get_build_info, job, number)

    def describe(self, job: str, number: int) -> dict[str, Any] | None:
        """The run as the Pipeline REST API describes it: status and (nested) stages."""
        r = self._get(f"{self.job_path(job)}/{number}/wfapi/describe")
        return None if r is None else json.loads(r.content)

    def node_describe(self, job: str, number: int, node: str) -> dict[str, Any] | None:
        """A stage node: its `stageFlowNodes` (the steps that ran in it, by start time)."""
        r = self._get(f"{self.job_path(job)}/{number}/execution/node/{quote(node, safe='')}/wfapi/describe")
        return None if r is None else json.loads(r.content)

    def node_log(self, job: str, number: int, node: str, start: int) -> LogPiece | None:
        """The log of flow node `node` from byte `start` (`progressiveText`): the WHOLE log, piece by piece.

        `X-Text-Size` is the offset to ask for next; `X-More-Data: true` while the node still writes.
        (Rancher read `wfapi/log`, the last 10 KiB only.)
        """
        r = self._get(f"{self.job_path(job)}/{number}/execution/node/{quote(node, safe='')}"
                      f"/log/logText/progressiveText?start={int(start)}")
        if r is None:
            return None
        size = r.headers.get("X-Text-Size")
        nxt = int(size) if size and size.isdigit() else start + len(r.content)
        return LogPiece(r.content, nxt, r.headers.get("X-More-Data", "").lower() == "true")

    # The system credentials store, global domain: the credentials plugin's REST API (docs/user.adoc,
    # "Creating a credentials" / "Managing an existing credentials instance"): POST the credential's
    # XML to `createCredentials` (409 when the id exists) or to `credential/ID/config.xml` (404 when
    # it does not). The secret travels only in that request body, over the authenticated session.
    CREDENTIALS = "/credentials/store/system/domain/_"

    def put_credential(self, credential_id: str, config_xml: str) -> None:
        """Create or update the credential `credential_id` (idempotent; one POST when it exists)."""
        body = config_xml.encode()

        def post(path: str) -> int:
            req = requests.Request("POST", self.url + self.CREDENTIALS + path, data=body,
                                   headers={"Content-Type": "application/xml; charset=utf-8"})
            try:
                return self.server.jenkins_request(req).status_code
            except jenkins.NotFoundException:
                return 404
            except requests.HTTPError as exc:
                if exc.response is not None and exc.response.status_code == 409:
                    return 409
                raise

        update = f"/credential/{quote(credential_id, safe='')}/config.xml"
        if self._call(post, update) != 404:
            return
        if self._call(post, "/createCredentials") == 409:  # another controller created it meanwhile
            self._call(post, update)

    def stop(self, job: str, number: int) -> None:
        """POST /job/X/N/stop (idempotent: a finished build ignores it)."""
        self._call(self.server.stop_build, job, number)

    def cancel_queue(self, queue_id: int) -> None:
        self._call(self.server.cancel_queue, queue_id)
