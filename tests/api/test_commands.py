"""`export` and `project` management commands."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from devops.models import DEFAULT_SETTINGS, Project, ProjectMember, Secret

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_export_list_and_stream(world):
    document = yaml.safe_load(run("export", "pipelineexecutions", "--project", world["project"].id))
    assert document["kind"] == "List"
    items = document["items"]
    assert [i["metadata"]["name"] for i in items] == ["p-app01-2", "p-app01-1"]
    assert items[0]["status"]["ended"] == "2026-11-26T09:30:57Z"
    assert items[0]["spec"]["message"] == "Fix the build\n\nLonger body."
    docs = list(yaml.safe_load_all(run("export", "Pipeline", "--stream")))
    assert [d["kind"] for d in docs] == ["Pipeline"] and docs[0]["spec"]["repositoryUrl"].endswith("app.git")


def test_export_filters_by_project_name(world, personas):
    from devops.controller.projects import do_create_project

    do_create_project("other")
    everything = yaml.safe_load(run("export", "projects"))["items"]
    assert {p["spec"]["displayName"] for p in everything} == {"demo", "other"}
    one = yaml.safe_load(run("export", "pipelinesettings", "--project", "other"))["items"]
    assert len(one) == len(DEFAULT_SETTINGS) and {i["metadata"]["namespace"] for i in one} == {
        Project.objects.get(name="other").id
    }


def test_export_errors(db):
    with pytest.raises(CommandError, match="unknown kind 'widgets'; one of: projects, pipelinesettings"):
        run("export", "widgets")
    with pytest.raises(CommandError, match="no project"):
        run("export", "pipelines", "--project", "nope")


def test_export_unknown_kind_exits_non_zero(tmp_path):
    env = {**os.environ, "SLIPWAY_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "manage.py", "export", "widgets"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0 and "unknown kind 'widgets'" in done.stderr


def test_project_create_list(personas):
    project_id = run("project", "create", "shop", "--owner", "alice").strip()
    project = Project.objects.get(pk=project_id)
    assert project.name == "shop" and project.role_of(personas["alice"]) == "owner"
    assert project.settings.count() == len(DEFAULT_SETTINGS)
    assert f"{project_id}\tshop\talice(owner)" in run("project", "list")
    with pytest.raises(CommandError, match="exists"):
        run("project", "create", "shop")


@pytest.mark.parametrize("name", ["", "   ", "tab\there", "line\nbreak", "x" * 101])
def test_project_create_refuses_a_blank_or_unprintable_name(db, name):
    with pytest.raises(CommandError, match="project name"):
        run("project", "create", name)
    assert not Project.objects.exists()


def test_project_setting(project):
    assert run("project", "setting", "demo", "executor-quota").strip() == "2"
    assert "= 5" in run("project", "setting", project.id, "executor-quota", "5")
    assert project.setting("executor-quota") == "5"
    for bad in ("0", "-3", "x"):
        with pytest.raises(CommandError, match="positive integer"):
            run("project", "setting", "demo", "executor-quota", bad)
    with pytest.raises(CommandError, match="valid settings: executor-quota, executor-cpu-request"):
        run("project", "setting", "demo", "executor-qouta")
    assert "(default)" in run("project", "setting", "demo", "executor-quota", "")
    assert project.setting("executor-quota") == "2"


def run_in(stdin: str, *args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stdin=io.StringIO(stdin))
    return out.getvalue()


def test_project_secret_never_echoes_values(project, tmp_path):
    out = run_in("USER=robot\nPASSWORD=pl4nted-pw\n", "project", "secret", "demo", "registry", "--from-stdin")
    assert "created" in out and "PASSWORD" in out and "pl4nted-pw" not in out
    out = run_in("pl4nted-pw2\n", "project", "secret", "demo", "registry", "PASSWORD=-")
    assert "updated" in out and "pl4nted" not in out
    assert Secret.objects.get(name="registry").data == {"USER": "robot", "PASSWORD": "pl4nted-pw2"}
    key = tmp_path / "id_ed25519"
    key.write_text("-----BEGIN pl4nted KEY-----\nabc\n-----END-----\n")
    run("project", "secret", "demo", "registry", f"ONLY=@{key}", "--replace")
    assert Secret.objects.get(name="registry").data == {"ONLY": key.read_text()}
    with pytest.raises(CommandError) as err:
        run("project", "secret", "demo", "registry", "pl4nted-no-key")
    assert "pl4nted" not in str(err.value)
    with pytest.raises(CommandError, match="not a valid key"):
        run_in("v", "project", "secret", "demo", "registry", "bad key=-")


def test_project_secret_refuses_values_on_the_command_line(project):
    with pytest.raises(CommandError) as err:
        run("project", "secret", "demo", "registry", "PASSWORD=pl4nted-argv")
    message = str(err.value)
    assert "pl4nted" not in message and "KEY=-" in message and "KEY=@FILE" in message and "--from-stdin" in message
    assert not Secret.objects.filter(name="registry").exists()
    with pytest.raises(CommandError, match="no values given"):
        run("project", "secret", "demo", "registry")
    with pytest.raises(CommandError, match="cannot read"):
        run("project", "secret", "demo", "registry", "K=@/nonexistent/file")


def test_project_member(project, personas):
    assert "charlie is read-only" in run("project", "member", "demo", "charlie", "read-only")
    assert ProjectMember.objects.get(user=personas["charlie"]).role == "read-only"
    run("project", "member", "demo", "charlie", "none")
    assert not ProjectMember.objects.filter(user=personas["charlie"]).exists()
    with pytest.raises(CommandError, match="last owner"):
        run("project", "member", "demo", "alice", "member")
    with pytest.raises(CommandError, match="no user"):
        run("project", "member", "demo", "zed", "member")


def test_export_list_is_one_valid_document_even_when_empty_or_long(world):
    from devops.controller.projects import do_create_project
    from tests.api.conftest import add_execution

    empty = do_create_project("empty")
    assert yaml.safe_load(run("export", "pipelines", "--project", empty.id)) == {
        "apiVersion": "v1", "kind": "List", "metadata": {}, "items": []
    }
    for run_number in range(3, 8):
        add_execution(world["pipeline"], run_number)
    items = yaml.safe_load(run("export", "pipelineexecutions"))["items"]
    assert len(items) == 7 and all(len(i["status"]["stages"]) == 2 for i in items)
    assert items == list(yaml.safe_load_all(run("export", "pipelineexecutions", "--stream")))
