"""The message: Rancher's default text, plain-text custom messages, one-line subjects."""
from __future__ import annotations

from devops.notifications.message import build_message, duration_text, repo_name

FACTS = {"run": 7, "repo": "acme/widget", "state": "Failed", "commit_message": "m", "author": "Tess",
         "commit": "abc", "url": "http://x/p/p-1/pipelines/p-2/runs/7/", "event": "push", "duration": 3725.4,
         "error": "step 1 failed", "branch": "${CICD_GIT_COMMIT}", "commit_sha": "abc"}


def test_default_text_is_rancher_s():
    m = build_message(FACTS)
    assert m.title == "Slipway: Pipeline #7 build for acme/widget repo Failed"
    assert m.text.splitlines() == [
        "Pipeline execution #7 for acme/widget repo ended in 'Failed' state",
        "Commit message: m", "Author: Tess", "Commit: abc",
        "Pipeline execution URL: http://x/p/p-1/pipelines/p-2/runs/7/", "Event: push",
        "Duration: 1h2m5s", "Message: step 1 failed"]


def test_custom_message_substitutes_once_and_only_known_names():
    m = build_message(FACTS, "b=${CICD_GIT_BRANCH} s=${CICD_EXECUTION_STATE} x=${HOME} {{.Run}} %s {0}")
    # The branch's own `${CICD_GIT_COMMIT}` is not expanded again; unknown names stay as written.
    assert m.text == "b=${CICD_GIT_COMMIT} s=Failed x=${HOME} {{.Run}} %s {0}"


def test_subject_is_one_line():
    m = build_message({**FACTS, "repo": "a/b\r\nBcc: victim@example.com"})
    assert "\n" not in m.title and "\r" not in m.title


def test_repo_name_and_duration():
    assert repo_name("https://github.com/acme/widget.git") == "acme/widget"
    assert repo_name("git@example.com:acme/widget") == "<git@example.com:acme/widget>"  # as Rancher's regex
    assert repo_name("/srv/git/team/app.git") == "team/app"
    assert duration_text(None) == "<Unknown>" and duration_text(59.6) == "1m0s" and duration_text(5) == "5s"
