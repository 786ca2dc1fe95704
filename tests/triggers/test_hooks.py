"""Provider webhooks replayed from the recorded payloads (../shared/fixtures/webhooks/), byte-exact.

Each request carries the headers SOURCES.md documents for its sender, and
the signature is computed the sender's way over the file's exact bytes.
"""
from __future__ import annotations

import pytest

from devops.models import PipelineExecution, WebhookDelivery

from .conftest import SECRET, fixture_bytes, sha256_hex

pytestmark = pytest.mark.django_db(transaction=True)


def github(event: str, body: bytes, delivery: str = "72d3162e-cc78-11e3-81ab-4c9367dc0958") -> dict:
    return {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "X-GitHub-Hook-ID": "1",
            "User-Agent": "GitHub-Hookshot/044aadd", "X-Hub-Signature-256": "sha256=" + sha256_hex(body)}


def gitlab(event: str, body: bytes, delivery: str = "a5461c4d-9c7f-4af9-add6-cddebe3c426f") -> dict:
    return {"X-Gitlab-Event": event, "Idempotency-Key": delivery, "X-Gitlab-Token": SECRET,
            "User-Agent": "GitLab/17.1.0-pre", "X-Gitlab-Instance": "https://gitlab.example.com",
            "X-Gitlab-Webhook-UUID": "3c5c0404-c866-44bc-a5f6-452bb1bfc76e"}


def bitbucket_cloud(event: str, body: bytes, delivery: str = "f3ef7a7c-7d5e-4a43-9d3f-0a6a9a3c2b11") -> dict:
    return {"X-Event-Key": event, "X-Request-UUID": delivery, "X-Hook-UUID": "{hook}", "X-Attempt-Number": "1",
            "User-Agent": "Bitbucket-Webhooks/2.0", "X-Hub-Signature": "sha256=" + sha256_hex(body)}


def bitbucket_server(event: str, body: bytes, delivery: str = "0b6f2a9e-21b8-4d1f-8d3b-8b9f1c7e5a10") -> dict:
    return {"X-Event-Key": event, "X-Request-Id": delivery, "X-Hub-Signature": "sha256=" + sha256_hex(body)}


def gitea(event: str, body: bytes, delivery: str = "7e2c3a4b-1f6d-4c9e-9a8b-5d4c3b2a1f0e") -> dict:
    # Gitea sends its own, the Gogs and the GitHub headers; the receiver must use X-Gitea-Signature.
    return {"X-Gitea-Event": event, "X-Gitea-Delivery": delivery, "X-Gitea-Signature": sha256_hex(body),
            "X-Gogs-Event": event, "X-GitHub-Event": event, "X-GitHub-Delivery": delivery}


def gogs(event: str, body: bytes, delivery: str = "5d4c3b2a-7e2c-4c9e-9a8b-1f6d3a4b7e2c") -> dict:
    return {"X-Gogs-Event": event, "X-Gogs-Delivery": delivery, "X-Gogs-Signature": sha256_hex(body)}


def post(client, provider: str, pipeline, body: bytes, headers: dict, content_type: str = "application/json"):
    name = pipeline if isinstance(pipeline, str) else pipeline.name
    return client.post(f"/api/v1/hooks/{provider}/{name}", data=body, content_type=content_type, headers=headers)


# provider, fixture, headers, event header value -> what the run must be
CASES = [
    ("github", "github/push-branch.json", github, "push",
     dict(event="push", branch="master", commit="fd489864e7642b48eaad6e3f155c10e46810ec72", ref="refs/heads/master",
          message="test a push event", author="binkkatal", author_email="binkkatal.r@gmail.com")),
    ("github", "github/push-branch-created.json", github, "push",
     dict(event="push", branch="master", ref="refs/heads/master")),
    ("github", "github/push-tag.json", github, "push",
     dict(event="tag", branch="v0.0.1", commit="d2b75aa7797ec26b088fa2dd527e9d2c052fcedd", ref="refs/tags/v0.0.1",
          author="bradrydzewski")),
    ("github", "github/pull_request-opened.json", github, "pull_request",
     dict(event="pull_request", branch="master", commit="ec26c3e57ca3a959ca5aad62de7213c562f8c821",
          ref="refs/pull/2/head", message="Update the README with new information.", author="Codertocat")),
    ("gitlab", "gitlab/push.json", gitlab, "Push Hook",
     dict(event="push", branch="master", commit="da1560886d4f094c3e6c9ef40349f7d38b5d27d7", ref="refs/heads/master",
          message="fixed readme", author="jsmith", author_email="john@example.com")),
    ("gitlab", "gitlab/tag_push.json", gitlab, "Tag Push Hook",
     dict(event="tag", branch="v1.0.0", commit="82b3d5ae55f7080f1e6022629cdb57bfae7cccc7", ref="refs/tags/v1.0.0")),
    ("gitlab", "gitlab/merge_request.json", gitlab, "Merge Request Hook",
     dict(event="pull_request", branch="master", commit="da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
          ref="refs/merge-requests/1/head", message="MS-Viewport", author="root")),
    ("bitbucketcloud", "bitbucket-cloud/repo-push.json", bitbucket_cloud, "repo:push",
     dict(event="push", branch="name-of-branch", commit="709d658dc5b6d6afcd46049c2f332ee3f515a67d",
          ref="refs/heads/name-of-branch", author="emmap1")),
    ("bitbucketcloud", "bitbucket-cloud/repo-push-branch.json", bitbucket_cloud, "repo:push",
     dict(event="push", branch="master", ref="refs/heads/master", author="brydzewski")),
    ("bitbucketcloud", "bitbucket-cloud/repo-push-tag.json", bitbucket_cloud, "repo:push",
     dict(event="tag", branch="feature/x", commit="141977fedf5cf35aa290ac87d4b5177ac4cd9de1",
          ref="refs/tags/feature/x", author="brydzewski", author_email="brad.rydzewski@gmail.com")),
    ("bitbucketserver", "bitbucket-server/repo-refs_changed.json", bitbucket_server, "repo:refs_changed",
     dict(event="push", branch="master", commit="823b2230a56056231c9425d63758fa87078a66b4", ref="refs/heads/master",
          author="jcitizen", author_email="jane@example.com")),
    ("bitbucketserver", "bitbucket-server/repo-refs_changed-tag.json", bitbucket_server, "repo:refs_changed",
     dict(event="tag", branch="v1.1.0", commit="823b2230a56056231c9425d63758fa87078a66b4", ref="refs/tags/v1.1.0")),
    ("gitea", "gitea/push.json", gitea, "push",
     dict(event="push", branch="develop", commit="bffeb74224043ba2feb48d137756c8a9331c449a", ref="refs/heads/develop",
          message="Webhooks Yay!", author="gitea", author_email="someone@gitea.io")),
    ("gitea", "gitea/push-branch-created.json", gitea, "push",
     dict(event="push", branch="master", commit="67b56589a45103f891bdee7c0546e5d40bc02001", message="example")),
    ("gogs", "gogs/push.json", gogs, "push",
     dict(event="push", branch="develop", commit="bffeb74224043ba2feb48d137756c8a9331c449a",
          message="Add new feature", author="unknwon", author_email="u@gogs.io")),
]


@pytest.mark.parametrize("provider,fixture,headers,event,want", CASES, ids=[c[1] for c in CASES])
def test_recorded_delivery_runs_the_pipeline(client, hook_pipeline, provider, fixture, headers, event, want):
    body = fixture_bytes(fixture)
    pipeline = hook_pipeline(fixture)
    r = post(client, provider, pipeline, body, headers(event, body))
    assert r.status_code == 202, r.content
    execution = PipelineExecution.objects.get(name=r.json()["execution"])
    got = {k: getattr(execution, k) for k in want}
    assert got == want
    assert execution.trigger_type == "webhook"
    row = WebhookDelivery.objects.get(pipeline=pipeline)
    assert (row.provider, row.signature_ok, row.outcome, row.executions, row.event) == (
        provider, True, "ran", [execution.name], event)

    from devops.controller.spec import build_spec

    # A pull request runs untrusted (no secrets, the isolation issue's rules); every other event trusted.
    assert build_spec(execution).trusted is (want["event"] != "pull_request")


def test_signatures_are_computed_over_the_exact_fixture_bytes():
    # SOURCES.md's vectors: if a file were re-indented, these would change.
    assert sha256_hex(fixture_bytes("github/push-branch.json")) == \
        "4eb0bb3763b6757a92b0b6f8d852195f9b900da2cb0fcbb0030388f59cb29f05"
    assert sha256_hex(fixture_bytes("gitea/push.json")) == \
        "597183de06d034700a15e376b097dea828d62b8256a1ed23a76196d9770675be"
    # GitHub's published test vector.
    from devops.triggers.events import signature_matches

    assert signature_matches("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
                             SECRET, b"Hello, World!")
    assert not signature_matches("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e18",
                                 SECRET, b"Hello, World!")


def test_redelivery_runs_once(client, hook_pipeline):
    body = fixture_bytes("github/push-branch.json")
    pipeline = hook_pipeline("github/push-branch.json")
    first = post(client, "github", pipeline, body, github("push", body))
    again = post(client, "github", pipeline, body, github("push", body))
    assert first.status_code == 202
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    assert PipelineExecution.objects.filter(pipeline=pipeline).count() == 1
    # A new delivery id (a new push) runs again.
    other = post(client, "github", pipeline, body, github("push", body, delivery="another"))
    assert other.status_code == 202
    assert PipelineExecution.objects.filter(pipeline=pipeline).count() == 2


@pytest.mark.parametrize("provider,fixture,headers,event,header", [
    ("github", "github/push-branch.json", github, "push", "X-Hub-Signature-256"),
    ("gitlab", "gitlab/push.json", gitlab, "Push Hook", "X-Gitlab-Token"),
    ("bitbucketcloud", "bitbucket-cloud/repo-push.json", bitbucket_cloud, "repo:push", "X-Hub-Signature"),
    ("bitbucketserver", "bitbucket-server/repo-refs_changed.json", bitbucket_server, "repo:refs_changed",
     "X-Hub-Signature"),
    ("gitea", "gitea/push.json", gitea, "push", "X-Gitea-Signature"),
    ("gogs", "gogs/push.json", gogs, "push", "X-Gogs-Signature"),
])
def test_unsigned_or_badly_signed_is_401_and_runs_nothing(client, hook_pipeline, provider, fixture, headers,
                                                          event, header):
    body = fixture_bytes(fixture)
    pipeline = hook_pipeline(fixture)
    good = headers(event, body)
    wrong = dict(good, **{header: good[header][:-1] + ("0" if good[header][-1] != "0" else "1")})
    unsigned = {k: v for k, v in good.items() if k != header}
    for h in (wrong, unsigned):
        r = post(client, provider, pipeline, body, h)
        assert r.status_code == 401, r.content
    # The body was signed for another secret: refused too.
    pipeline.webhook_token = "another secret"
    pipeline.save()
    assert post(client, provider, pipeline, body, good).status_code == 401
    assert not PipelineExecution.objects.exists()
    rows = list(WebhookDelivery.objects.values_list("signature_ok", "outcome"))
    assert rows == [(False, "bad-signature")] * 3
    # A forged copy does not take the delivery id: the real delivery still runs.
    pipeline.webhook_token = SECRET
    pipeline.save()
    assert post(client, provider, pipeline, body, good).status_code == 202


def test_gitea_ignores_the_deprecated_in_body_secret(client, hook_pipeline):
    body = fixture_bytes("gitea/push.json")
    assert b'"secret": "3gEsCfjlV2ugRwgpU#w1*WaW*wa4NXgGmpCfkbG3"' in body
    pipeline = hook_pipeline("gitea/push.json")
    pipeline.webhook_token = "3gEsCfjlV2ugRwgpU#w1*WaW*wa4NXgGmpCfkbG3"  # equal to the in-body value
    pipeline.save()
    r = post(client, "gitea", pipeline, body, {"X-Gitea-Event": "push", "X-Gitea-Delivery": "x"})
    assert r.status_code == 401


def test_a_pipeline_without_a_secret_accepts_nothing(client, hook_pipeline):
    body = fixture_bytes("github/push-branch.json")
    pipeline = hook_pipeline("github/push-branch.json", webhook_token="")
    r = post(client, "github", pipeline, body, github("push", body))
    assert r.status_code == 401 and "no webhook secret" in r.json()["detail"]
    assert not PipelineExecution.objects.exists()


def test_unknown_pipeline_or_provider_is_404(client, hook_pipeline):
    body = fixture_bytes("github/push-branch.json")
    pipeline = hook_pipeline("github/push-branch.json")
    assert post(client, "github", "p-nosuch", body, github("push", body)).status_code == 404
    assert post(client, "svn", pipeline, body, github("push", body)).status_code == 404
    assert not WebhookDelivery.objects.exists() and not PipelineExecution.objects.exists()


def test_ping_is_answered_and_runs_nothing(client, hook_pipeline):
    body = fixture_bytes("github/ping.json")
    pipeline = hook_pipeline()
    r = post(client, "github", pipeline, body, github("ping", body))
    assert r.status_code == 200 and r.json()["outcome"] == "ping"
    assert not PipelineExecution.objects.exists()
    assert WebhookDelivery.objects.get().outcome == "ping"


def test_a_deleted_tag_runs_nothing(client, hook_pipeline):
    body = fixture_bytes("github/push-tag-deleted.json")
    pipeline = hook_pipeline()
    r = post(client, "github", pipeline, body, github("push", body))
    assert r.status_code == 200, r.content
    assert r.json() == {"outcome": "ignored", "detail": "refs/tags/simple-tag was deleted"}
    assert not PipelineExecution.objects.exists()


def test_unknown_event_is_400(client, hook_pipeline):
    body = fixture_bytes("github/create-tag.json")
    pipeline = hook_pipeline()
    r = post(client, "github", pipeline, body, github("create", body))
    assert r.status_code == 400 and "'create' is not handled" in r.json()["detail"]
    assert not WebhookDelivery.objects.exists()


@pytest.mark.parametrize("flag,fixture,event", [
    ("trigger_webhook_push", "github/push-branch.json", "push"),
    ("trigger_webhook_tag", "github/push-tag.json", "push"),
    ("trigger_webhook_pr", "github/pull_request-opened.json", "pull_request"),
])
def test_events_the_pipeline_turned_off_run_nothing(client, hook_pipeline, flag, fixture, event):
    body = fixture_bytes(fixture)
    pipeline = hook_pipeline(fixture, **{flag: False})
    r = post(client, "github", pipeline, body, github(event, body))
    assert r.status_code == 200 and r.json()["outcome"] == "disabled", r.content
    assert flag in r.json()["detail"]
    assert not PipelineExecution.objects.exists()
    assert WebhookDelivery.objects.get().outcome == "disabled"


def test_the_files_branch_constraint_is_a_recorded_outcome_not_an_error(client, hook_pipeline):
    yaml = "branch:\n  include: [release-*]\nstages:\n- name: B\n  steps:\n  - runScriptConfig:\n" \
           "      image: busybox\n      shellScript: 'true'\n"
    body = fixture_bytes("github/push-branch.json")
    pipeline = hook_pipeline("github/push-branch.json", yaml=yaml)
    r = post(client, "github", pipeline, body, github("push", body))
    assert r.status_code == 200, r.content
    assert r.json()["outcome"] == "branch-not-allowed"
    row = WebhookDelivery.objects.get()
    assert row.outcome == "branch-not-allowed" and "master" in row.detail
    assert not PipelineExecution.objects.exists()


def test_malformed_json_is_400_naming_the_problem(client, hook_pipeline):
    pipeline = hook_pipeline()
    body = fixture_bytes("github/push-branch.json")[:-40]  # cut off: signed, but not JSON
    r = post(client, "github", pipeline, body, github("push", body))
    assert r.status_code == 400
    assert "not JSON" in r.json()["detail"] and "line" in r.json()["detail"]
    arr = b"[1, 2]"
    r = post(client, "github", pipeline, arr, github("push", arr))
    assert r.status_code == 400 and "not an object" in r.json()["detail"]
    missing = b'{"ref": "refs/heads/master"}'
    r = post(client, "github", pipeline, missing, github("push", missing))
    assert r.status_code == 400 and "'after'" in r.json()["detail"]
    assert not WebhookDelivery.objects.exists() and not PipelineExecution.objects.exists()


def test_huge_bodies_are_refused_with_413(client, hook_pipeline, settings):
    settings.SLIPWAY_WEBHOOK_MAX_BODY = 4096
    body = fixture_bytes("github/push-branch.json")  # 8471 bytes
    pipeline = hook_pipeline("github/push-branch.json")
    r = post(client, "github", pipeline, body, github("push", body))
    assert r.status_code == 413 and "4096" in r.json()["detail"]
    # A declared length over the limit is refused before reading: the small body never counts.
    small = fixture_bytes("github/ping.json")
    r = client.post(f"/api/v1/hooks/github/{pipeline.name}", data=small, content_type="application/json",
                    headers=github("ping", small), CONTENT_LENGTH="999999999")
    assert r.status_code == 413
    assert not WebhookDelivery.objects.exists() and not PipelineExecution.objects.exists()


def test_github_form_content_type(client, hook_pipeline):
    from urllib.parse import urlencode

    payload = fixture_bytes("github/push-branch.json")
    body = urlencode({"payload": payload.decode()}).encode()
    pipeline = hook_pipeline("github/push-branch.json")
    r = post(client, "github", pipeline, body, github("push", body), content_type="application/x-www-form-urlencoded")
    assert r.status_code == 202, r.content


def test_an_unreadable_repository_is_502_and_a_redelivery_runs(client, hook_pipeline, tmp_path):
    body = fixture_bytes("github/push-branch.json")
    pipeline = hook_pipeline("github/push-branch.json")
    real = pipeline.repository_url
    pipeline.repository_url = str(tmp_path / "gone")
    pipeline.save()
    r = post(client, "github", pipeline, body, github("push", body))
    assert r.status_code == 502 and "could not be read" in r.json()["detail"]
    assert not WebhookDelivery.objects.exists()
    pipeline.repository_url = real
    pipeline.save()
    assert post(client, "github", pipeline, body, github("push", body)).status_code == 202
