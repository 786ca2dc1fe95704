"""Image-push triggers: Harbor, Docker Hub and Aliyun ACR payloads (recorded, byte-exact) at token URLs,
and the built-in registry's real notifications after a real buildah push."""
from __future__ import annotations

import pytest

from devops.models import Pipeline, PipelineExecution, WebhookDelivery
from tests.controller.conftest import git, make_repo

from .conftest import PIPELINE_YAML, fixture_bytes

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "tok-0123456789abcdef"


@pytest.fixture
def repo(tmp_path):
    path = tmp_path / "repo"
    make_repo(path, {".devops.yml": PIPELINE_YAML}, branch="master")
    git(path, "branch", "dev")
    return path


def make_pipeline(project, repo, *entries: dict) -> Pipeline:
    return Pipeline.objects.create(project=project, repository_url=str(repo), default_branch="master",
                                   image_webhooks=list(entries))


def entry(image_type: str, image: str, branches=(), token: str = TOKEN) -> dict:
    return {"imageType": image_type, "triggerImage": image, "branches": list(branches), "comment": "", "token": token}


def post(client, image_type: str, pipeline: Pipeline, body: bytes, token: str = TOKEN):
    return client.post(f"/api/v1/hooks/image/{image_type}/{pipeline.name}/{token}", data=body,
                       content_type="application/json")


def test_harbor_push_runs_each_listed_branch_once(client, project, data_dir, repo):
    p = make_pipeline(project, repo, entry("harbor", "test-webhook/debian:latest", ["master", "dev"]))
    body = fixture_bytes("harbor/push_artifact-tag.json")
    r = post(client, "harbor", p, body)
    assert r.status_code == 202, r.content
    runs = PipelineExecution.objects.filter(pipeline=p)
    assert sorted(runs.values_list("branch", "trigger_type", "event")) == [
        ("dev", "image", "push"), ("master", "image", "push")]
    assert r.json()["pushes"][0]["image"] == "hub.harbor.com/test-webhook/debian:latest"
    # Harbor retries a delivery it thinks failed: the same push runs nothing more.
    again = post(client, "harbor", p, body)
    assert again.status_code == 200 and again.json()["pushes"][0]["outcome"] == "duplicate"
    assert runs.count() == 2
    row = WebhookDelivery.objects.get(pipeline=p)
    assert row.provider == "harbor" and row.outcome == "ran" and len(row.executions) == 2
    assert row.delivery_id == "test-webhook/debian:latest@sha256:" \
        "8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8"


def test_harbor_push_by_digest_matches_an_untagged_trigger_image_only(client, project, data_dir, repo):
    body = fixture_bytes("harbor/push_artifact.json")
    tagged = make_pipeline(project, repo, entry("harbor", "harbor/alpine:latest"))
    any_tag = make_pipeline(project, repo, entry("harbor", "localhost/harbor/alpine"))
    assert post(client, "harbor", tagged, body).status_code == 200
    assert not PipelineExecution.objects.filter(pipeline=tagged).exists()
    assert post(client, "harbor", any_tag, body).status_code == 202
    assert PipelineExecution.objects.get(pipeline=any_tag).branch == "master"  # no branches: the default one


@pytest.mark.parametrize("image_type,fixture,image", [
    ("dockerhub", "dockerhub/push.json", "svendowideit/testhook:latest"),
    ("dockerhub", "dockerhub/push-legacy-with-images.json", "svendowideit/testhook"),
    ("aliyun", "aliyun-acr/push.json", "namespace/repoTest:lat*"),
])
def test_docker_hub_and_aliyun_pushes_run(client, project, data_dir, repo, image_type, fixture, image):
    p = make_pipeline(project, repo, entry(image_type, image, ["dev"]))
    body = fixture_bytes(fixture)
    r = post(client, image_type, p, body)
    assert r.status_code == 202, r.content
    assert list(PipelineExecution.objects.filter(pipeline=p).values_list("branch", flat=True)) == ["dev"]
    assert post(client, image_type, p, body).json()["pushes"][0]["outcome"] == "duplicate"
    assert PipelineExecution.objects.filter(pipeline=p).count() == 1


def test_wrong_token_type_or_pipeline_runs_nothing(client, project, data_dir, repo):
    body = fixture_bytes("dockerhub/push.json")
    p = make_pipeline(project, repo, entry("dockerhub", "svendowideit/testhook"),
                      entry("harbor", "svendowideit/testhook", token="harbor-token"),
                      entry("aliyun", "svendowideit/testhook", token=""))
    assert post(client, "dockerhub", p, body, token="wrong").status_code == 401
    assert post(client, "dockerhub", p, body, token="harbor-token").status_code == 401  # another entry's token
    assert post(client, "aliyun", p, fixture_bytes("aliyun-acr/push.json"), token="x").status_code == 401
    assert post(client, "quay", p, body).status_code == 404
    assert post(client, "builtin", p, body).status_code == 404  # the built-in registry has its own endpoint
    assert client.post(f"/api/v1/hooks/image/dockerhub/p-nosuch/{TOKEN}", data=body,
                       content_type="application/json").status_code == 404
    bad = client.post(f"/api/v1/hooks/image/dockerhub/{p.name}/{TOKEN}", data=b"{nope",
                      content_type="application/json")
    assert bad.status_code == 400 and "not JSON" in bad.json()["detail"]
    assert not PipelineExecution.objects.exists() and not WebhookDelivery.objects.exists()


def test_the_token_is_encrypted_at_rest(project, data_dir, repo):
    from django.db import connection

    p = make_pipeline(project, repo, entry("dockerhub", "svendowideit/testhook"))
    with connection.cursor() as cur:
        cur.execute("SELECT image_webhooks FROM devops_pipeline WHERE id = %s", [p.pk])
        raw = cur.fetchone()[0]
    assert TOKEN not in raw and "svendowideit/testhook" in raw


def test_a_registry_notification_redelivered_runs_once(project, data_dir, repo):
    from devops.triggers.registry_events import image_pushed

    app = f"{project.id}/app"
    p = make_pipeline(project, repo, entry("builtin", f"{app}:1*", ["master"], token=""))
    event = {"id": "asdf-asdf-asdf-asdf-0", "action": "push"}
    for _ in range(2):
        image_pushed.send(sender=None, repository=app, tag="12", digest="sha256:" + "a" * 64,
                          registry="127.0.0.1:5000", event=event)
    image_pushed.send(sender=None, repository=app, tag="2", digest="sha256:" + "b" * 64,
                      registry="127.0.0.1:5000", event={"id": "other"})  # tag does not match 1*
    assert list(PipelineExecution.objects.filter(pipeline=p).values_list("trigger_type", flat=True)) == ["image"]


def test_a_built_in_push_of_another_projects_image_runs_nothing(project, data_dir, repo):
    """The built-in registry's repositories belong to projects (`<project id>/`): a pipeline hears only its own."""
    from devops.triggers.registry_events import image_pushed

    p = make_pipeline(project, repo, entry("builtin", "p-other/app", ["master"], token=""),
                      entry("builtin", f"{project.id}/app", ["master"], token=""))
    image_pushed.send(sender=None, repository="p-other/app", tag="1", digest="sha256:" + "c" * 64,
                      registry="127.0.0.1:5000", event={"id": "theirs"})
    assert not PipelineExecution.objects.filter(pipeline=p).exists()  # its entry names it, still nothing
    image_pushed.send(sender=None, repository=f"{project.id}/app", tag="1", digest="sha256:" + "d" * 64,
                      registry="127.0.0.1:5000", event={"id": "ours"})
    assert PipelineExecution.objects.filter(pipeline=p).count() == 1


@pytest.mark.slow
def test_a_buildah_push_to_the_built_in_registry_runs_the_pipeline(tmp_path, live_server, settings, project,
                                                                   busybox_image, repo):
    """buildah push -> docker-registry -> POST /api/v1/registry/notifications -> image_pushed -> do_run."""
    import subprocess
    import time

    from devops.engines.local.images import auth_json, buildah_storage_args
    from devops.registry.server import NOTIFY_PATH, ensure_registry, stop_registry
    from tests.conftest import require_tool
    from tests.images_registry.conftest import BASE_IMAGE

    require_tool("docker-registry")
    require_tool("buildah")
    image_data_dir = busybox_image.root.parent  # its containers/ is the buildah storage holding busybox
    data = tmp_path / "data"
    data.mkdir()
    settings.DATA_DIR = data
    from devops.registry.server import project_auth
    from devops.registry.tokens import TOKEN_PATH

    app = f"{project.id}/app"
    p = make_pipeline(project, repo, entry("builtin", f"{app}:v*", ["master", "dev"], token=""))
    info = ensure_registry(data, notify_url=live_server.url + NOTIFY_PATH, token_realm=live_server.url + TOKEN_PATH)
    try:
        auth = tmp_path / "auth.json"
        # The project's own credential, as its publish steps get it (token auth: the live server's token view).
        auth.write_text(auth_json({info.address: project_auth(data, project.id, trusted=True)}))

        def push(tag: str) -> None:
            done = subprocess.run(["buildah", *buildah_storage_args(image_data_dir), "push", "--tls-verify=false",
                                   "--authfile", str(auth), BASE_IMAGE, f"docker://{info.address}/{app}:{tag}"],
                                  capture_output=True, text=True, check=False)
            assert done.returncode == 0, done.stderr

        def wait_for(n: int) -> None:
            end = time.monotonic() + 60  # a deadline for a hung registry, not a speed requirement
            while time.monotonic() < end and PipelineExecution.objects.filter(pipeline=p).count() < n:
                time.sleep(0.2)

        push("v1")
        wait_for(2)
        push("nomatch")
        push("v2")
        wait_for(4)
        # The registry delivers in order: v2's runs exist, so v1's and nomatch's notifications were handled.
        runs = list(PipelineExecution.objects.filter(pipeline=p).order_by("run").values_list("branch", "trigger_type"))
        assert sorted(runs) == [("dev", "image"), ("dev", "image"), ("master", "image"), ("master", "image")]
        rows = WebhookDelivery.objects.filter(pipeline=p, provider="builtin")
        assert rows.count() == 2 and all(r.outcome == "ran" and len(r.executions) == 2 for r in rows)
    finally:
        stop_registry(data)
