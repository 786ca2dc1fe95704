"""The pages without a browser: who sees what, who may write, and the API's rules on every form."""
from __future__ import annotations

import pytest
from django.test import Client

from tests.api.conftest import add_execution, assert_no_planted

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_(personas):
    def make(name: str | None) -> Client:
        c = Client()
        if name:
            c.force_login(personas[name])
        return c
    return make


def urls(world) -> list[str]:
    p, pipe = world["project"].id, world["pipeline"].name
    return [f"/p/{p}/", f"/p/{p}/pipelines/new", f"/p/{p}/pipelines/{pipe}/", f"/p/{p}/pipelines/{pipe}/run",
            f"/p/{p}/settings/"]


def test_anonymous_users_go_to_the_login_page(as_, world):
    for url in ["/", *urls(world), "/account/tokens/"]:
        r = as_(None).get(url)
        assert r.status_code == 302 and r["Location"].startswith("/accounts/login/"), url


@pytest.mark.parametrize("persona", ["alice", "bob", "ronnie"])
def test_members_see_every_page_and_no_secret(as_, world, persona):
    for url in urls(world):
        r = as_(persona).get(url)
        assert r.status_code == 200, url
        assert_no_planted(r.content)


def test_non_members_get_404_for_every_project_url(as_, world):
    p, pipe = world["project"].id, world["pipeline"].name
    posts = [f"/p/{p}/pipelines/{pipe}/run", f"/p/{p}/pipelines/{pipe}/delete", f"/p/{p}/settings/settings/executor-quota",
             f"/p/{p}/settings/secrets", f"/p/{p}/settings/caches/clear", f"/p/{p}/settings/members"]
    for url in urls(world):
        assert as_("charlie").get(url).status_code == 404, url
    for url in posts:
        assert as_("charlie").post(url, {"value": "3"}).status_code == 404, url
    home = as_("charlie").get("/")
    assert home.status_code == 200 and b"demo" not in home.content


def test_the_projects_page_counts_pipelines_active_runs_and_the_last_result(as_, world):
    from devops.models import Pipeline

    new = add_execution(world["pipeline"], 3, state="Building")
    Pipeline.objects.filter(pk=world["pipeline"].pk).update(last_execution_id=new.name)  # as do_run keeps it
    html = as_("ronnie").get("/").content.decode()
    row = html[html.index('id="project-'):]
    row = row[:row.index("</tr>")]
    assert ">demo</a>" in row and ">1</td>" in row  # one pipeline, one active run
    assert 'class="state state-building">Building</span>' in row and "#3" in row


def test_read_only_members_get_no_write_control_and_403_on_writes(as_, world):
    p, pipe = world["project"].id, world["pipeline"].name
    ronnie = as_("ronnie")
    for url in urls(world):
        html = ronnie.get(url).content.decode()
        assert ">Run</button>" not in html and ">Delete</button>" not in html and ">Save</button>" not in html, url
        assert "Add pipeline</a>" not in html
    assert ronnie.post(f"/p/{p}/pipelines/{pipe}/run", {"branch": "main"}).status_code == 403
    assert ronnie.post(f"/p/{p}/pipelines/{pipe}/delete").status_code == 403
    assert ronnie.post(f"/p/{p}/settings/settings/executor-quota", {"value": "5"}).status_code == 403
    assert ronnie.post(f"/p/{p}/settings/secrets", {"name": "x", "key": "k", "value": "v"}).status_code == 403
    # a member writes pipelines but not settings (the owner's), as in the API
    assert as_("bob").post(f"/p/{p}/settings/settings/executor-quota", {"value": "5"}).status_code == 403
    assert world["project"].setting("executor-quota") == "2"


def test_a_bad_setting_value_is_refused_with_the_apis_message(as_, world):
    p = world["project"].id
    r = as_("alice").post(f"/p/{p}/settings/settings/executor-quota", {"value": "lots"})
    assert r.status_code == 400
    assert "executor-quota: must be a positive integer, got &#x27;lots&#x27;" in r.content.decode()
    assert world["project"].setting("executor-quota") == "2"
    r = as_("alice").post(f"/p/{p}/settings/settings/executor-quota", {"value": "4"})
    assert r.status_code == 302 and world["project"].setting("executor-quota") == "4"


def test_the_htmx_setting_swap_returns_the_row_with_the_field_error(as_, world):
    p = world["project"].id
    r = as_("alice").post(f"/p/{p}/settings/settings/executor-memory-limit", {"value": "12 potatoes"},
                          headers={"HX-Request": "true"})
    html = r.content.decode()
    assert r.status_code == 200 and html.lstrip().startswith('<tr id="setting-executor-memory-limit"')
    assert 'aria-invalid="true"' in html and "executor-memory-limit:" in html


def test_a_url_with_credentials_is_refused_and_not_echoed(as_, world):
    from devops.models import Pipeline

    p = world["project"].id
    r = as_("bob").post(f"/p/{p}/pipelines/new", {"repository_url": "https://u:hunter2@git.example/r.git",
                                                  "default_branch": "main", "credential_kind": "none"})
    assert r.status_code == 400 and b"holds credentials" in r.content and b"hunter2" not in r.content
    assert not Pipeline.objects.filter(repository_url__contains="git.example").exists()


def test_a_pipeline_with_a_token_stores_it_encrypted(as_, world):
    from django.db import connection

    from devops.models import Pipeline

    p = world["project"].id
    r = as_("bob").post(f"/p/{p}/pipelines/new", {
        "repository_url": "https://git.example/acme/web.git", "name": "web", "default_branch": "main",
        "credential_kind": "token", "username": "ci", "token": "PLANTED-new-token-9"})
    assert r.status_code == 302 and r["Location"] == f"/p/{p}/pipelines/web/"
    pipe = Pipeline.objects.select_related("credential").get(name="web")
    assert pipe.credential.access_token == "PLANTED-new-token-9" and pipe.credential.login_name == "ci"
    with connection.cursor() as c:
        c.execute("SELECT access_token FROM devops_sourcecodecredential WHERE id = %s", [pipe.credential.pk])
        assert "PLANTED-new-token-9" not in c.fetchone()[0]
    assert b"PLANTED-new-token-9" not in as_("bob").get(f"/p/{p}/pipelines/web/").content


def test_delete_is_refused_with_the_apis_409_message_while_a_run_is_busy(as_, world):
    from devops.models import Pipeline

    p, pipe = world["project"].id, world["pipeline"]
    add_execution(pipe, 3, state="Building")
    r = as_("bob").post(f"/p/{p}/pipelines/{pipe.name}/delete", follow=True)
    assert "Not deleted: executions still running: p-app01-3; stop them first" in r.content.decode()
    assert Pipeline.objects.filter(pk=pipe.pk).exists()
    pipe.executions.filter(run=3).update(execution_state="Aborted")
    r = as_("bob").post(f"/p/{p}/pipelines/{pipe.name}/delete")
    assert r.status_code == 302 and not Pipeline.objects.filter(pk=pipe.pk).exists()


def test_runs_are_filtered_by_state_and_branch_and_paged(as_, world):
    p, pipe = world["project"], world["pipeline"]
    for n in range(3, 33):
        add_execution(pipe, n, state="Success", branch="main", stages=0)
    c = as_("ronnie")
    html = c.get(f"/p/{p.id}/pipelines/{pipe.name}/?state=Failed").content.decode()
    assert 'id="run-2"' in html and 'id="run-1"' not in html
    html = c.get(f"/p/{p.id}/pipelines/{pipe.name}/?branch=dev").content.decode()
    assert 'id="run-2"' in html and 'id="run-3"' not in html
    first = c.get(f"/p/{p.id}/pipelines/{pipe.name}/").content.decode()
    assert 'id="run-32"' in first and 'id="run-7"' not in first and "Page 1 of 2" in first
    second = c.get(f"/p/{p.id}/pipelines/{pipe.name}/?page=2").content.decode()
    assert 'id="run-7"' in second and 'id="run-32"' not in second
    part = c.get(f"/p/{p.id}/pipelines/{pipe.name}/?state=Failed",
                 headers={"HX-Request": "true", "HX-Target": "runs"}).content.decode()
    assert part.lstrip().startswith('<div id="runs">') and "<html" not in part


def test_the_pipeline_list_costs_the_same_queries_whatever_the_history(as_, world, django_assert_max_num_queries):
    p, pipe = world["project"], world["pipeline"]
    c = as_("ronnie")
    c.get(f"/p/{p.id}/")  # warm the session
    for n in range(3, 60):
        add_execution(pipe, n, stages=0)
    for url in ("/", f"/p/{p.id}/", f"/p/{p.id}/pipelines/{pipe.name}/"):
        with django_assert_max_num_queries(12):
            assert c.get(url).status_code == 200


def test_members_and_the_last_owner_rule(as_, world, personas):
    from devops.models import ProjectMember

    p = world["project"]
    alice = as_("alice")
    assert alice.post(f"/p/{p.id}/settings/members", {"user": "charlie", "role": "read-only"}).status_code == 302
    assert ProjectMember.objects.get(project=p, user=personas["charlie"]).role == "read-only"
    r = alice.post(f"/p/{p.id}/settings/members/alice", {"role": "member"}, follow=True)
    assert "the project&#x27;s last owner cannot be removed or demoted" in r.content.decode()
    assert ProjectMember.objects.get(project=p, user=personas["alice"]).role == "owner"


def test_secret_values_are_write_only(as_, world):
    from devops.models import Secret

    p = world["project"]
    r = as_("bob").post(f"/p/{p.id}/settings/secrets", {"name": "deploy", "key": "TOKEN", "value": "PLANTED-x-77"})
    assert r.status_code == 302 and Secret.objects.get(project=p, name="deploy").data == {"TOKEN": "PLANTED-x-77"}
    html = as_("bob").get(f"/p/{p.id}/settings/").content.decode()
    assert "TOKEN" in html and "PLANTED-x-77" not in html
    r = as_("bob").post(f"/p/{p.id}/settings/secrets", {"name": "Bad Name", "key": "k", "value": "v"})
    assert r.status_code == 400 and "is not a valid secret name" in r.content.decode()


def test_an_api_token_is_shown_once(as_, personas):
    from rest_framework.authtoken.models import Token

    c = as_("bob")
    r = c.post("/account/tokens/new", follow=True)
    key = Token.objects.get(user=personas["bob"]).key
    assert key in r.content.decode()
    assert key not in c.get("/account/tokens/").content.decode()
    c.post("/account/tokens/revoke")
    assert not Token.objects.filter(user=personas["bob"]).exists()


def test_no_template_comment_leaks_into_a_page(as_, world):
    """Django's `{# #}` is one line only: a multi-line one is printed on the page as text."""
    e = world["executions"][0]
    run = f"/p/{e.project_id}/pipelines/{e.pipeline.name}/runs/{e.run}/"
    for url in ["/", *urls(world), run, run + "logs/1.0/", "/account/tokens/"]:
        body = as_("alice").get(url).content.decode()
        assert "{#" not in body and "#}" not in body and "{% comment" not in body, url
