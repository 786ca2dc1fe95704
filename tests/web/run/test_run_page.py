"""The execution page, its config page, Rerun and Stop (Django's test client, persona one-liners)."""
from __future__ import annotations

import pytest
from django.urls import reverse

from devops.models import ExecutionState as S
from devops.models import PipelineExecution
from tests.controller.conftest import make_repo
from tests.web.run.conftest import make_config, new_execution

pytestmark = pytest.mark.django_db


def _url(e, name="web:run") -> str:
    return reverse(name, kwargs={"project": e.project_id, "pipeline": e.pipeline.name, "n": e.run})


def _get(client, user, url):
    client.force_login(user)
    return client.get(url)


def test_anonymous_goes_to_login(client, run):
    r = client.get(_url(run))
    assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("name", ["web:run", "web:run-config"])
def test_non_member_gets_404(client, run, personas, name):
    assert _get(client, personas["charlie"], _url(run, name)).status_code == 404


def test_non_member_cannot_stop_or_rerun(client, run, personas):
    client.force_login(personas["charlie"])
    assert client.post(_url(run, "web:run-stop")).status_code == 404
    run.refresh_from_db()
    assert run.execution_state == S.WAITING


def test_read_only_member_sees_the_run_and_no_write_control(client, run, personas):
    r = _get(client, personas["ronnie"], _url(run))
    body = r.content.decode()
    assert r.status_code == 200
    assert "Run 1" in body and ">Waiting<" in body and "View config" in body and "Download all logs" in body
    assert "Stop" not in body and "Rerun" not in body
    client.force_login(personas["ronnie"])
    assert client.post(_url(run, "web:run-stop")).status_code == 403


def test_page_shows_stages_as_columns_with_their_steps_and_the_status_socket(client, run, personas):
    body = _get(client, personas["bob"], _url(run)).content.decode()
    assert body.count('class="stage ') == 2                       # Clone + S1
    assert 'id="step-0-0"' in body and 'id="step-1-0"' in body
    assert f'ws-connect="/ws/v1/status/{run.project_id}/executions/{run.name}"' in body
    assert '<section id="log-pane"' in body
    assert ">Stop</button>" in body and ">Rerun</button>" not in body  # active: Stop only


def test_the_failed_step_is_selected_by_default_and_links_to_its_log(client, pipeline, personas):
    from devops.models import StepStatus

    e = new_execution(pipeline, make_config([{}, {}]))
    StepStatus.objects.filter(execution=e, stage_index=1, index=1).update(state=S.FAILED)
    body = _get(client, personas["ronnie"], _url(e)).content.decode()
    selected = body.split('aria-current="true"')[0].rsplit("<a ", 1)[1]
    assert 'id="step-1-1"' in selected
    assert f"/p/{e.project_id}/pipelines/{e.pipeline.name}/runs/{e.run}/logs/1.1/" in body  # the log viewer
    # An explicit choice wins (a real href: works on reload and with the back button).
    body = _get(client, personas["ronnie"], _url(e) + "?stage=0&step=0").content.decode()
    assert 'id="step-0-0"' in body.split('aria-current="true"')[0].rsplit("<a ", 1)[1]


def test_the_selected_steps_first_log_lines_come_inline_with_the_page(client, pipeline, personas, log_settings):
    """No second request for the log: the viewer and its first page are in the page's own HTML."""
    from devops.logs import LogKey, get_log_store
    from devops.models import StepStatus

    e = new_execution(pipeline, make_config([{}]))
    StepStatus.objects.filter(execution=e, stage_index=1, index=0).update(state=S.FAILED)
    w = get_log_store().writer(LogKey(e.name, 1, 0))
    w.write(b"\x1b[31mit broke <here>\x1b[0m\n")
    w.close()
    body = _get(client, personas["ronnie"], _url(e)).content.decode()
    pane = body.split('<section id="log-pane"')[1]
    assert 'data-log-viewer' in pane and 'data-stage="1" data-step="0"' in pane
    assert 'id="s1.0-L1"' in pane and "it broke &lt;here&gt;" in pane
    assert 'hx-trigger="load"' not in body
    assert 'data-auto="true"' in pane                                  # the run's default: followed live
    body = _get(client, personas["ronnie"], _url(e) + "?stage=0&step=0").content.decode()
    assert 'data-auto="false"' in body.split('<section id="log-pane"')[1]   # the user's choice: kept


def test_branch_commit_message_and_author_are_escaped(client, pipeline, personas):
    e = new_execution(pipeline, make_config([{}]), branch="<script>alert(1)</script>",
                      message='<img src=x onerror="alert(2)">', author="<b>mallory</b>")
    body = _get(client, personas["ronnie"], _url(e)).content.decode()
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<img src=x" not in body and "&lt;img src=x" in body
    assert "<b>mallory</b>" not in body


def test_stop_goes_through_do_stop_and_comes_back_to_the_page(client, run, personas):
    client.force_login(personas["bob"])
    r = client.post(_url(run, "web:run-stop"))
    assert r.status_code == 302 and r["Location"] == _url(run)
    run.refresh_from_db()
    assert run.execution_state == S.ABORTED and "bob" in run.conditions[-1]["message"]
    assert client.post(_url(run, "web:run-stop")).status_code == 409          # finished already
    r = client.post(_url(run, "web:run-stop"), HTTP_HX_REQUEST="true")
    assert r.status_code == 409


def test_rerun_makes_a_new_run_and_goes_there(client, run, personas):
    client.force_login(personas["bob"])
    assert client.post(_url(run, "web:run-rerun")).status_code == 409         # still active
    client.post(_url(run, "web:run-stop"))
    r = client.post(_url(run, "web:run-rerun"), HTTP_HX_REQUEST="true")
    new = PipelineExecution.objects.get(pipeline=run.pipeline, run=2)
    assert r.status_code == 200 and r["HX-Redirect"] == _url(new)
    assert new.rerun_of_id == run.pk and new.trigger_user == personas["bob"]
    assert client.get(_url(new)).status_code == 200


def test_get_does_not_change_state(client, run, personas):
    client.force_login(personas["bob"])
    assert client.get(_url(run, "web:run-stop")).status_code == 405
    run.refresh_from_db()
    assert run.execution_state == S.WAITING


def test_config_page_shows_the_exact_yaml_and_a_diff_against_the_branch_head(client, pipeline, personas,
                                                                           tmp_path):
    used = "stages:\n- name: Build\n  steps:\n  - runScriptConfig:\n      image: busybox\n      shellScript: echo <old>\n"
    head = used.replace("echo <old>", "echo new")
    make_repo(tmp_path / "repo", {".devops.yml": head}, branch="master")
    pipeline.repository_url = str(tmp_path / "repo")
    pipeline.save()
    e = new_execution(pipeline, make_config([{}]), config_text=used)
    body = _get(client, personas["ronnie"], _url(e, "web:run-config")).content.decode()
    assert "shellScript: echo &lt;old&gt;" in body                       # exact text, escaped
    diff = body.split('id="config-diff"')[1]
    assert '<span class="del">-      shellScript: echo &lt;old&gt;</span>' in diff
    assert '<span class="add">+      shellScript: echo new</span>' in diff
    same = new_execution(pipeline, make_config([{}]), config_text=head)
    body = _get(client, personas["ronnie"], _url(same, "web:run-config")).content.decode()
    assert "The branch head has the same config." in body and 'id="config-diff"' not in body


def test_config_page_says_when_the_head_cannot_be_read(client, run, personas):
    body = _get(client, personas["ronnie"], _url(run, "web:run-config")).content.decode()
    assert "Cannot read the branch head" in body
    assert "stages:" in body                                           # the normalised config still shows
