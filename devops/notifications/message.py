"""What a notification says: Rancher's default text, or the file's `message` as plain text.

`facts` is the plain data of a finished run (built by the controller from
the execution row). The default text follows Rancher v2's
`defaultNotificationMessage` line for line (run number, repository, state,
commit message, author, the run's page, event, duration), with Slipway's
run page as the link. The e-mail subject follows Rancher's too.

A custom `message` is text, not a template: the only thing replaced is a
literal `${CICD_...}` naming one of the run's own values below (one pass,
so a value that itself contains `${...}` is left as it is); anything else,
`{{ }}` included, is sent as written. Receivers render it as text: the
Slack body is JSON, e-mail is text/plain.
"""
from __future__ import annotations

import re
from typing import Any

from devops.notifications.base import Message

DEFAULT_TEMPLATE = """\
Pipeline execution #{run} for {repo} repo ended in '{state}' state
Commit message: {commit_message}
Author: {author}
Commit: {commit}
Pipeline execution URL: {url}
Event: {event}
Duration: {duration}
Message: {error}
"""

# The run's own values a custom message may name (the step environment's names).
VARIABLES = {
    "CICD_EXECUTION_SEQUENCE": "run",
    "CICD_EXECUTION_ID": "execution",
    "CICD_PIPELINE_ID": "pipeline",
    "CICD_PROJECT_ID": "project",
    "CICD_GIT_URL": "repository_url",
    "CICD_GIT_REPO_NAME": "repo",
    "CICD_GIT_BRANCH": "branch",
    "CICD_GIT_REF": "ref",
    "CICD_GIT_COMMIT": "commit",
    "CICD_EVENT": "event",
    "CICD_TRIGGER_TYPE": "trigger_type",
    "CICD_EXECUTION_STATE": "state",
    "CICD_EXECUTION_URL": "url",
}
_VAR = re.compile(r"\$\{(CICD_[A-Z_]+)\}")


def repo_name(url: str) -> str:
    """`owner/name` of a repository URL (Rancher's getRepoNameFromURL), else `<url>`."""
    m = re.match(r".*/([^/]*?)/([^/]*?)(?:\.git)?/?$", url or "")
    if not m or not m.group(1) or not m.group(2):
        return f"<{url}>"
    return f"{m.group(1)}/{m.group(2)}"


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "<Unknown>"
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return (f"{h}h" if h else "") + (f"{m}m" if h or m else "") + f"{s}s"


def substitute(text: str, facts: dict[str, Any]) -> str:
    def one(m: re.Match) -> str:
        key = VARIABLES.get(m.group(1))
        return str(facts.get(key, "")) if key else m.group(0)

    return _VAR.sub(one, text)


def build_message(facts: dict[str, Any], custom: str = "") -> Message:
    """The Message for a finished run's facts; `custom` is the file's `message` ("" = the default)."""
    title = f"Slipway: Pipeline #{facts.get('run')} build for {facts.get('repo')} repo {facts.get('state')}"
    title = " ".join(title.split())[:250]  # one line: an e-mail subject (no header injection)
    if custom:
        text = substitute(custom, facts)
    else:
        values = {k: facts.get(k, "") for k in ("run", "repo", "state", "commit_message", "author", "commit",
                                                  "url", "event")}
        values["event"] = values["event"] or "manual"
        values["duration"] = duration_text(facts.get("duration"))
        values["error"] = facts.get("error") or facts.get("state")
        text = DEFAULT_TEMPLATE.format(**values)
    return Message(title=title, text=text, facts=facts)
