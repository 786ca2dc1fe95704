"""Cache list/clear through the API (membership) and the CLI; registry credentials; notifications."""
from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from devops.cache.store import CacheEntry


@pytest.fixture
def cached(project, tmp_path, settings):
    """Two pipelines of the project with one cache each, under the project's devops-cache-dir."""
    from devops.models import Pipeline, PipelineSetting

    settings.DATA_DIR = tmp_path / "data"
    root = tmp_path / "cache-root"
    PipelineSetting.objects.update_or_create(project=project, name="devops-cache-dir",
                                             defaults={"value": str(root)})
    pipes = [Pipeline.objects.create(project=project, name=f"pl-{n}", repository_url=f"https://x/{n}.git")
             for n in ("a", "b")]
    for pl, path in zip(pipes, ("/root/.m2", "node_modules"), strict=False):
        e = CacheEntry(root, project.id, pl.name, path)
        w, _ = e.restore()
        (w / "blob").write_bytes(b"x" * 5000)
        e.publish(w)
        e.discard(e.restore()[0])  # one hit
    return root, pipes


def client(user) -> APIClient:
    c = APIClient()
    c.force_authenticate(user)
    return c


def test_list_and_clear_with_membership(project, personas, cached):
    url = f"/api/v1/projects/{project.id}/caches"
    r = client(personas["ronnie"]).get(url)  # read-only may look
    assert r.status_code == 200
    items = r.json()["items"]
    assert {(i["pipeline"], i["path"]) for i in items} == {("pl-a", "/root/.m2"), ("pl-b", "node_modules")}
    one = items[0]
    assert one["size"] > 5000 and one["hits"] == 1 and one["misses"] == 1 and one["lastUsed"]
    assert client(personas["charlie"]).get(url).status_code == 404  # not a member
    assert APIClient().get(url).status_code in (401, 403)
    assert client(personas["ronnie"]).delete(url).status_code == 403  # read-only may not clear
    r = client(personas["bob"]).get(f"{url}/pl-a")
    assert [i["path"] for i in r.json()["items"]] == ["/root/.m2"]
    assert client(personas["bob"]).get(f"{url}/nope").status_code == 404
    key = r.json()["items"][0]["key"]
    assert client(personas["bob"]).delete(f"{url}/pl-a/{key}").json() == {"removed": 1}
    assert client(personas["bob"]).delete(f"{url}/pl-a/{key}").status_code == 404
    assert client(personas["alice"]).delete(url).json() == {"removed": 1}
    assert client(personas["alice"]).get(url).json()["items"] == []


def test_cli_list_and_clear(project, cached, capsys):
    call_command("cache", "list", project.name)
    out = capsys.readouterr().out
    assert "pl-a" in out and "/root/.m2" in out and "node_modules" in out and "HITS" in out
    call_command("cache", "list", project.id, "pl-b")
    out = capsys.readouterr().out
    assert "node_modules" in out and "/root/.m2" not in out
    call_command("cache", "clear", project.id, "pl-a")
    assert "removed 1 cache" in capsys.readouterr().out
    call_command("cache", "list", project.id)
    out = capsys.readouterr().out
    assert "/root/.m2" not in out and "node_modules" in out


def test_registry_credentials_are_write_only(project, personas):
    from devops.models import RegistryCredential

    url = f"/api/v1/projects/{project.id}/registrycredentials"
    body = {"host": "https://harbor.example.com/", "username": "robot", "password": "s3cret-PLANTED"}
    assert client(personas["ronnie"]).post(url, body, format="json").status_code == 403
    r = client(personas["bob"]).post(url, body, format="json")
    assert r.status_code == 201 and "s3cret-PLANTED" not in r.content.decode()
    assert r.json()["host"] == "harbor.example.com"
    listing = client(personas["ronnie"]).get(url)
    assert listing.status_code == 200 and "s3cret-PLANTED" not in listing.content.decode()
    row = RegistryCredential.objects.get(project=project)
    assert row.password == "s3cret-PLANTED"
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT password FROM devops_registrycredential")
        assert cur.fetchone()[0].startswith("fernet:v1:")
    assert client(personas["charlie"]).delete(f"{url}/{row.pk}").status_code == 404
    assert client(personas["bob"]).delete(f"{url}/{row.pk}").status_code == 204


def test_registry_notifications_token_and_signal(tmp_path, settings, db):
    from devops.registry.server import _save_state, registry_dir
    from devops.triggers.registry_events import image_pushed, recent_pushes

    settings.DATA_DIR = tmp_path
    registry_dir(tmp_path).mkdir(parents=True)
    _save_state(registry_dir(tmp_path), {"address": "127.0.0.1:5000", "username": "slipway",
                                         "password": "pw", "notify_token": "tok-123"})
    event = {"events": [
        {"action": "push", "timestamp": "2026-11-26T10:00:00Z",
         "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "repository": "demo/app",
                    "tag": "7", "digest": "sha256:abc"}},
        {"action": "push", "target": {"mediaType": "application/octet-stream", "repository": "demo/app"}},
    ]}
    seen = []
    image_pushed.connect(lambda sender, **kw: seen.append(kw["repository"] + ":" + kw["tag"]), weak=False,
                         dispatch_uid="test-seen")
    try:
        c = APIClient()
        url = "/api/v1/registry/notifications"
        ctype = "application/vnd.docker.distribution.events.v1+json"
        assert c.post(url, json.dumps(event), content_type=ctype).status_code == 401
        assert c.post(url, json.dumps(event), content_type=ctype,
                      HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
        r = c.post(url, json.dumps(event), content_type=ctype, HTTP_AUTHORIZATION="Bearer tok-123")
        assert r.status_code == 200 and r.json() == {"accepted": 1}
    finally:
        image_pushed.disconnect(dispatch_uid="test-seen")
    assert seen == ["demo/app:7"]
    assert recent_pushes()[0]["digest"] == "sha256:abc"
